//! The gateway's side towards backends: the pooled HTTP clients every backend
//! call and every plugin fetch goes through, and their TLS settings. It
//! knows nothing of endpoints or plugins, so both can use it.
//!
//! Endpoints call backends through the [`Upstream`] trait, which each server
//! worker implements with its own [`BackendClient`] (a pooled connection
//! belongs to the runtime that opened it) and tests implement in memory.

pub mod backend_client;
pub mod connection_timings;
pub mod dialer;
pub mod http1_pool;
pub mod service_discovery;
pub mod tls;

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::{Body, Frame, Incoming, SizeHint};

pub use backend_client::{BackendClient, SendError};

/// What calls backends: one request, its response head with a body to read.
pub trait Upstream: Send + Sync {
    /// Sends `request` (an absolute URI) and waits for the response head.
    fn send(
        &self,
        request: Request<Full<Bytes>>,
    ) -> impl Future<Output = Result<Response<UpstreamBody>, SendError>> + Send;

    /// A client of the same backends that a task outliving the request can
    /// own (shadow backends' calls); `None` when there is none.
    fn detached(&self) -> Option<BackendClient> {
        None
    }
}

/// A backend's body: from the network, or from memory (tests, and answers a
/// future cache holds).
#[derive(Debug)]
pub enum UpstreamBody {
    /// Read from the backend's connection as it arrives.
    Remote(Incoming),
    /// Already in memory.
    Local(Full<Bytes>),
    /// From the network, cut off at a deadline: a `no-op` endpoint's body
    /// streamed to the client stops when the endpoint's timeout does, as
    /// lura's cancelled request context stops Go's copy, or when an HTTP/2
    /// stream's `write_timeout` does.
    Bounded(Incoming, Pin<Box<tokio::time::Sleep>>),
}

impl UpstreamBody {
    /// This body, ending in an error at `deadline` if it has not ended (or
    /// at the earlier deadline it already has).
    pub fn until(self, deadline: tokio::time::Instant) -> Self {
        match self {
            UpstreamBody::Remote(body) => {
                UpstreamBody::Bounded(body, Box::pin(tokio::time::sleep_until(deadline)))
            }
            UpstreamBody::Bounded(body, mut sleep) => {
                if deadline < sleep.deadline() {
                    sleep.as_mut().reset(deadline);
                }
                UpstreamBody::Bounded(body, sleep)
            }
            local => local,
        }
    }
}

impl From<Full<Bytes>> for UpstreamBody {
    fn from(body: Full<Bytes>) -> Self {
        UpstreamBody::Local(body)
    }
}

/// Why a backend body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The connection failed.
    #[error(transparent)]
    Read(#[from] hyper::Error),
    /// The endpoint's timeout, or the stream's `write_timeout`, passed
    /// before the body ended.
    #[error("a deadline (the endpoint's timeout or write_timeout) passed while the backend's body was still streaming")]
    Deadline,
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match self.get_mut() {
            UpstreamBody::Remote(body) => Pin::new(body)
                .poll_frame(cx)
                .map(|frame| frame.map(|f| f.map_err(BodyError::Read))),
            UpstreamBody::Bounded(body, deadline) => {
                if deadline.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Some(Err(BodyError::Deadline)));
                }
                Pin::new(body)
                    .poll_frame(cx)
                    .map(|frame| frame.map(|f| f.map_err(BodyError::Read)))
            }
            // Full's error is Infallible.
            UpstreamBody::Local(body) => Pin::new(body)
                .poll_frame(cx)
                .map(|frame| frame.map(|f| f.map_err(|never| match never {}))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            UpstreamBody::Remote(body) | UpstreamBody::Bounded(body, _) => body.is_end_stream(),
            UpstreamBody::Local(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            UpstreamBody::Remote(body) | UpstreamBody::Bounded(body, _) => body.size_hint(),
            UpstreamBody::Local(body) => body.size_hint(),
        }
    }
}
