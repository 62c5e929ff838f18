//! [`WatchFrame`]: a `cfgd.v1.WatchResponse` encoded once and sent as it
//! is, so one change reaches many watchers as one shared buffer.

use bytes::{BufMut, Bytes};
use prost::Message;

use crate::pb;

/// An encoded [`pb::WatchResponse`], what the server's `Watch` streams
/// send. Cloning shares the bytes.
///
/// It encodes as the bytes it holds. It is never decoded by the server:
/// read one with [`WatchFrame::decode`], which gives the message back.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct WatchFrame(Bytes);

impl WatchFrame {
    /// Encodes `response`.
    pub fn encode(response: &pb::WatchResponse) -> Self {
        Self(Bytes::from(response.encode_to_vec()))
    }

    /// The encoded message.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The message these bytes encode.
    ///
    /// # Errors
    /// Never for a frame made by [`WatchFrame::encode`].
    pub fn decode(&self) -> Result<pb::WatchResponse, prost::DecodeError> {
        pb::WatchResponse::decode(self.0.as_ref())
    }
}

impl std::fmt::Debug for WatchFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.decode() {
            Ok(m) => m.fmt(f),
            Err(_) => f.debug_tuple("WatchFrame").field(&self.0).finish(),
        }
    }
}

impl Message for WatchFrame {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        buf.put_slice(&self.0);
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: prost::encoding::WireType,
        buf: &mut impl bytes::Buf,
        ctx: prost::encoding::DecodeContext,
    ) -> Result<(), prost::DecodeError> {
        // Only the client side decodes watch responses, into
        // `pb::WatchResponse`; a frame keeps no decoded field.
        prost::encoding::skip_field(wire_type, tag, buf, ctx)
    }

    fn encoded_len(&self) -> usize {
        self.0.len()
    }

    fn clear(&mut self) {
        self.0 = Bytes::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_encodes_as_the_message_it_was_made_from() {
        let response = pb::WatchResponse {
            epoch: 7,
            event: Some(pb::watch_response::Event::Change(pb::Change {
                revision: 3,
                detail: "set by a test".into(),
                ..Default::default()
            })),
        };
        let frame = WatchFrame::encode(&response);
        assert_eq!(frame.encoded_len(), response.encoded_len());
        assert_eq!(frame.encode_to_vec(), response.encode_to_vec());
        assert_eq!(frame.decode().unwrap(), response);
        // Inside a longer buffer (as tonic's encoder writes it) too.
        let mut buf = vec![0xAA];
        frame.encode(&mut buf).unwrap();
        assert_eq!(&buf[1..], response.encode_to_vec());
    }
}
