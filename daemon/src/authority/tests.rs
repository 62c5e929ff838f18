use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};

use super::*;

const CLIENT_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

fn frame(ty: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len();
    let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, ty, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

fn literal(out: &mut Vec<u8>, first: u8, s: &[u8]) {
    out.push(first);
    out.push(s.len() as u8);
    out.extend_from_slice(s);
}

/// What grpc-core sends: `:authority` as a literal with incremental
/// indexing of static name 1, then as an index into the dynamic table.
fn grpc_core_blocks(authority: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut first = vec![0x83, 0x86]; // :method POST, :scheme http
    literal(&mut first, 0x41, authority); // :authority, indexed as 62
    literal(&mut first, 0x44, b"/cfgd.v1.Settings/Get"); // :path, indexed (now 62; authority 63)
    literal(&mut first, 0x40, b"te"); // new name, indexed (now 62)
    first.push(8);
    first.extend_from_slice(b"trailers");
    let second = vec![0x83, 0x86, 0x80 | 64, 0x80 | 63, 0x80 | 62];
    (first, second)
}

/// Reads one byte per poll, so every frame arrives in pieces.
struct Trickle(Vec<u8>, usize);

impl AsyncRead for Trickle {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.1 < self.0.len() {
            let b = self.0[self.1];
            buf.put_slice(&[b]);
            self.1 += 1;
        }
        Poll::Ready(Ok(()))
    }
}

async fn through(input: Vec<u8>) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    FixAuthority::new(Trickle(input, 0), true)
        .read_to_end(&mut out)
        .await?;
    Ok(out)
}

/// The frames of `bytes` after the preface: (type, flags, stream, payload).
fn frames(bytes: &[u8]) -> Vec<(u8, u8, u32, Vec<u8>)> {
    assert_eq!(&bytes[..24], CLIENT_PREFACE);
    let mut at = 24;
    let mut out = Vec::new();
    while at < bytes.len() {
        let len = usize::from(bytes[at]) << 16
            | usize::from(bytes[at + 1]) << 8
            | usize::from(bytes[at + 2]);
        let stream = u32::from_be_bytes(bytes[at + 5..at + 9].try_into().unwrap());
        out.push((
            bytes[at + 3],
            bytes[at + 4],
            stream,
            bytes[at + 9..at + 9 + len].to_vec(),
        ));
        at += 9 + len;
    }
    out
}

fn authority_of(headers: &[(Vec<u8>, Vec<u8>)]) -> String {
    let (_, v) = headers
        .iter()
        .find(|(n, _)| n == b":authority")
        .expect(":authority");
    String::from_utf8(v.clone()).unwrap()
}

#[tokio::test]
async fn grpc_cores_unix_authority_becomes_localhost_and_everything_else_is_kept() {
    let (first, second) = grpc_core_blocks(b"tmp%2Fcfgd%2Fs.sock");
    let settings = frame(0x4, 0, 0, &[0, 3, 0, 0, 0, 100]);
    let data = frame(0x0, END_STREAM, 1, b"\0\0\0\0\x02hi");
    let mut input = CLIENT_PREFACE.to_vec();
    input.extend(&settings);
    input.extend(frame(HEADERS, END_HEADERS, 1, &first));
    input.extend(&data);
    // The second request: padded, with a priority, split over a CONTINUATION.
    let mut padded = vec![3];
    padded.extend_from_slice(&[0, 0, 0, 0, 16]);
    padded.extend_from_slice(&second[..2]);
    padded.extend_from_slice(&[0, 0, 0]);
    input.extend(frame(HEADERS, PADDED | PRIORITY | END_STREAM, 3, &padded));
    input.extend(frame(CONTINUATION, END_HEADERS, 3, &second[2..]));

    let out = frames(&through(input).await.unwrap());
    assert_eq!(out.len(), 4, "{out:?}");
    assert_eq!(
        out[0],
        (0x4, 0, 0, settings[9..].to_vec()),
        "SETTINGS untouched"
    );
    assert_eq!(
        out[2],
        (0x0, END_STREAM, 1, data[9..].to_vec()),
        "DATA untouched"
    );
    // h2 decodes the new blocks with its own, fresh decoder.
    let mut decoder = loona_hpack::Decoder::new();
    let (ty, flags, stream, block) = &out[1];
    assert_eq!((*ty, *flags, *stream), (HEADERS, END_HEADERS, 1));
    let headers = decoder.decode(block).unwrap();
    assert_eq!(authority_of(&headers), "localhost");
    let names: Vec<&[u8]> = headers.iter().map(|(n, _)| n.as_slice()).collect();
    assert_eq!(
        names,
        [&b":method"[..], b":scheme", b":authority", b":path", b"te"]
    );
    assert_eq!(headers[3].1, b"/cfgd.v1.Settings/Get");

    let (ty, flags, stream, payload) = &out[3];
    assert_eq!(
        (*ty, *flags, *stream),
        (HEADERS, PRIORITY | END_STREAM | END_HEADERS, 3)
    );
    assert_eq!(&payload[..5], &[0, 0, 0, 0, 16], "the priority is kept");
    let headers = decoder.decode(&payload[5..]).unwrap();
    assert_eq!(
        authority_of(&headers),
        "localhost",
        "also through the client's dynamic table"
    );
    assert_eq!(
        headers[3],
        (b":path".to_vec(), b"/cfgd.v1.Settings/Get".to_vec())
    );
    assert_eq!(headers[4], (b"te".to_vec(), b"trailers".to_vec()));
}

#[tokio::test]
async fn a_valid_authority_is_left_as_it_is() {
    let (first, _) = grpc_core_blocks(b"localhost:7979");
    let mut input = CLIENT_PREFACE.to_vec();
    input.extend(frame(HEADERS, END_HEADERS, 1, &first));
    let out = frames(&through(input).await.unwrap());
    let headers = loona_hpack::Decoder::new().decode(&out[0].3).unwrap();
    assert_eq!(authority_of(&headers), "localhost:7979");
}

#[tokio::test]
async fn a_large_block_is_split_into_frames_h2_accepts_and_a_huge_one_closes_the_connection() {
    let mut block = vec![0x83];
    for i in 0..40 {
        literal(&mut block, 0x00, format!("x-big-{i:02}").as_bytes());
        block.push(0x7f); // a 7-bit-prefix length of 127 + 873 = 1000
        block.extend_from_slice(&[0xe9, 0x06]);
        block.extend(std::iter::repeat_n(b'v', 1000));
    }
    let mut input = CLIENT_PREFACE.to_vec();
    let (a, b) = block.split_at(MAX_FRAME);
    input.extend(frame(HEADERS, 0, 1, a));
    input.extend(frame(CONTINUATION, END_HEADERS, 1, b));
    let out = frames(&through(input).await.unwrap());
    assert!(out.iter().all(|f| f.3.len() <= MAX_FRAME));
    assert_eq!(out[0].0, HEADERS);
    assert!(out[1..].iter().all(|f| f.0 == CONTINUATION));
    assert_eq!(out.last().unwrap().1, END_HEADERS);
    let joined: Vec<u8> = out.iter().flat_map(|f| f.3.clone()).collect();
    assert_eq!(
        loona_hpack::Decoder::new().decode(&joined).unwrap().len(),
        41
    );

    let mut input = CLIENT_PREFACE.to_vec();
    input.extend(frame(HEADERS, 0, 1, &[0x83]));
    for _ in 0..(MAX_BLOCK / MAX_FRAME + 1) {
        input.extend(frame(CONTINUATION, 0, 1, &vec![0x83; MAX_FRAME]));
    }
    let err = through(input).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
}

#[tokio::test]
async fn inactive_it_passes_bytes_through() {
    let bytes = b"anything at all, even not HTTP/2".to_vec();
    let mut out = Vec::new();
    FixAuthority::new(&bytes[..], false)
        .read_to_end(&mut out)
        .await
        .unwrap();
    assert_eq!(out, bytes);
}
