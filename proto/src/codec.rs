//! [`LeanCodec`]: prost encoding with a small first encode buffer, for every
//! method of the server.
//!
//! tonic gives each response stream an encode buffer of 8 KiB by default
//! and a held stream keeps it; a daemon with 10,000 watchers would hold
//! 80 MiB of mostly empty buffers. A watch event is a few hundred bytes,
//! so the buffer starts empty ([`ENCODE_BUFFER`]) and grows (doubling) to
//! what is sent; what a stream then holds between events is the unused
//! end of its last allocation. Decoding keeps tonic's default.

use std::marker::PhantomData;

use tonic::codec::{BufferSettings, Codec};
use tonic_prost::{ProstDecoder, ProstEncoder};

/// The first encode buffer of a response stream, in bytes.
pub const ENCODE_BUFFER: usize = 0;
/// tonic's default: a stream's buffer is handed on once it holds this much.
const YIELD_THRESHOLD: usize = 32 * 1024;

/// A prost [`Codec`] with an encode buffer of [`ENCODE_BUFFER`] to start.
#[derive(Debug, Clone)]
pub struct LeanCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for LeanCodec<T, U> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<T, U> Codec for LeanCodec<T, U>
where
    T: prost::Message + Send + 'static,
    U: prost::Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = ProstDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::new(BufferSettings::new(ENCODE_BUFFER, YIELD_THRESHOLD))
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstDecoder::new(BufferSettings::default())
    }
}
