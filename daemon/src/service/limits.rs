//! The daemon's request limits, in one place: the size of a request
//! message (checked on its gRPC frame header, before it is read), and the
//! length of names and values and the number of settings per request
//! (checked before anything else is done with them).

use std::convert::Infallible;
use std::task::{Context, Poll};

use futures_util::StreamExt;
use http_body::Frame;
use http_body_util::{BodyExt, BodyStream, StreamBody};
use tonic::body::Body;
use tonic::codegen::{BoxFuture, Bytes, Service, http};
use tonic::server::NamedService;

use crate::config::Limits;
use crate::error::{Limit, QUOTE, clip};

/// A setting or profile name no longer than the limit.
///
/// # Errors
/// [`Limit::NameLength`].
pub(crate) fn name(limits: &Limits, what: &'static str, name: &str) -> Result<(), Limit> {
    if name.len() > limits.max_name_len {
        return Err(Limit::NameLength {
            what,
            given: clip(name, QUOTE).into_owned(),
            len: name.len(),
            limit: limits.max_name_len,
        });
    }
    Ok(())
}

/// A batch (`Set`, `Unset`, `Validate`) of 1 to `max_batch` settings.
///
/// # Errors
/// [`Limit::EmptyBatch`], [`Limit::Batch`].
pub(crate) fn batch(limits: &Limits, len: usize) -> Result<(), Limit> {
    if len == 0 {
        return Err(Limit::EmptyBatch);
    }
    if len > limits.max_batch {
        return Err(Limit::Batch {
            len,
            limit: limits.max_batch,
        });
    }
    Ok(())
}

/// At most `max_batch` names in a `Snapshot` or `Watch` filter, each no
/// longer than the name limit.
///
/// # Errors
/// [`Limit::Names`], [`Limit::NameLength`].
pub(crate) fn names(limits: &Limits, names: &[String]) -> Result<(), Limit> {
    if names.len() > limits.max_batch {
        return Err(Limit::Names {
            len: names.len(),
            limit: limits.max_batch,
        });
    }
    names
        .iter()
        .try_for_each(|n| name(limits, "a setting name", n))
}

/// A raw value no longer than the value limit.
///
/// # Errors
/// [`Limit::ValueLength`].
pub(crate) fn value(limits: &Limits, name: &str, raw: &str) -> Result<(), Limit> {
    if raw.len() > limits.max_value_len {
        return Err(Limit::ValueLength {
            name: clip(name, QUOTE).into_owned(),
            len: raw.len(),
            limit: limits.max_value_len,
        });
    }
    Ok(())
}

/// Refuses a request whose message is over `limit` bytes from its gRPC
/// frame header, before reading it, with RESOURCE_EXHAUSTED and the
/// daemon's typed details (tonic's own check answers OUT_OF_RANGE, which is
/// not what gRPC's libraries answer).
///
/// Every `cfgd.v1.Settings` call sends one request message, so the first
/// frame header decides.
#[derive(Debug, Clone)]
pub(crate) struct MessageLimit<S> {
    inner: S,
    limit: usize,
}

impl<S> MessageLimit<S> {
    /// `inner`, refusing messages over `limit` bytes.
    pub(crate) fn new(inner: S, limit: usize) -> Self {
        Self { inner, limit }
    }
}

impl<S: NamedService> NamedService for MessageLimit<S> {
    const NAME: &'static str = S::NAME;
}

/// The gRPC frame header: a compression flag and a big-endian length.
const HEADER: usize = 5;

impl<S> Service<http::Request<Body>> for MessageLimit<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        // The clone is not ready; the service polled ready is the one used.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let limit = self.limit;
        Box::pin(async move {
            let (parts, mut body) = request.into_parts();
            let mut head: Vec<Result<Frame<Bytes>, tonic::Status>> = Vec::new();
            let mut prefix = Vec::with_capacity(HEADER);
            while prefix.len() < HEADER {
                match body.frame().await {
                    Some(Ok(frame)) => {
                        if let Some(data) = frame.data_ref() {
                            let want = (HEADER - prefix.len()).min(data.len());
                            prefix.extend_from_slice(&data[..want]);
                        }
                        head.push(Ok(frame));
                    }
                    Some(Err(e)) => {
                        head.push(Err(e));
                        break;
                    }
                    None => break,
                }
            }
            if prefix.len() == HEADER {
                let len = u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]]) as usize;
                if len > limit {
                    let status =
                        tonic::Status::from(crate::error::OpError::Limit(Limit::Message {
                            len,
                            limit,
                        }));
                    return Ok(status.into_http());
                }
            }
            // Whatever was read goes first, then the rest as it comes (an
            // error reading it reaches the decoder as before).
            let replay = futures_util::stream::iter(head);
            let body = Body::new(StreamBody::new(replay.chain(BodyStream::new(body))));
            inner.call(http::Request::from_parts(parts, body)).await
        })
    }
}
