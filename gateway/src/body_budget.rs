//! How much of the clients' request bodies the gateway holds at once. Each
//! body is buffered whole before the backends are called (they may be
//! several, and hooks read it), so without a bound sixteen concurrent
//! 31 MiB uploads held half a gigabyte. A body's bytes are reserved as they
//! arrive; past the request's own limit the client gets 413, past the
//! process's budget 503, and the reservation ends with the request.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use http::StatusCode;
use http_body_util::BodyExt;
use hyper::body::Body;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ProxyError;

/// The budget counts in KiB: a semaphore's permits are a `u32` each time.
const UNIT: usize = 1024;

/// The limits on request bodies.
#[derive(Clone, Debug)]
pub struct BodyLimits {
    /// The largest body one request may send.
    pub per_request: usize,
    /// What all requests in flight may hold together.
    budget: Arc<Semaphore>,
    total: usize,
}

impl BodyLimits {
    /// Limits of `per_request` bytes a request and `in_flight` bytes for
    /// all.
    pub fn new(per_request: usize, in_flight: usize) -> Self {
        let units = (in_flight / UNIT).clamp(1, Semaphore::MAX_PERMITS);
        Self {
            per_request,
            budget: Arc::new(Semaphore::new(units)),
            total: in_flight,
        }
    }
}

impl Default for BodyLimits {
    /// 32 MiB a request, 256 MiB in all.
    fn default() -> Self {
        Self::new(32 << 20, 256 << 20)
    }
}

/// By when a request's body must have arrived (`read_timeout`): set by the
/// connection on each request, as Go's server sets its read deadline when a
/// request begins.
#[derive(Debug, Clone, Copy)]
pub struct ReadDeadline {
    pub at: tokio::time::Instant,
    /// The `read_timeout` it comes from, for the error.
    pub limit: std::time::Duration,
}

/// A body read whole, with its share of the budget.
pub struct HeldBody {
    pub bytes: Bytes,
    /// Released when the request is done with the body.
    pub reservation: Option<OwnedSemaphorePermit>,
}

/// Reads `body` whole within `limits`, and by `deadline` when there is one;
/// `size_hint` (the `Content-Length`) sizes the buffer once instead of
/// growing it.
pub async fn read<B>(
    body: B,
    limits: &BodyLimits,
    deadline: Option<ReadDeadline>,
) -> Result<HeldBody, ProxyError>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let declared = body
        .size_hint()
        .exact()
        .and_then(|n| usize::try_from(n).ok());
    if declared.is_some_and(|n| n > limits.per_request) {
        return Err(too_large(limits));
    }
    let mut reservation: Option<OwnedSemaphorePermit> = None;
    let mut reserved_units = 0usize;
    let mut reserve = |needed: usize, reservation: &mut Option<OwnedSemaphorePermit>| {
        let units = needed.div_ceil(UNIT);
        if units <= reserved_units {
            return Ok(());
        }
        let more = u32::try_from(units - reserved_units).map_err(|_| over_budget(limits))?;
        let permit = limits
            .budget
            .clone()
            .try_acquire_many_owned(more)
            .map_err(|_| over_budget(limits))?;
        match reservation {
            Some(held) => held.merge(permit),
            None => *reservation = Some(permit),
        }
        reserved_units = units;
        Ok(())
    };
    if let Some(n) = declared {
        reserve(n, &mut reservation)?;
    }
    let mut buffer = BytesMut::with_capacity(declared.unwrap_or(0));
    let mut body = std::pin::pin!(body);
    loop {
        let next = match deadline {
            Some(deadline) => tokio::time::timeout_at(deadline.at, body.frame())
                .await
                .map_err(|_| ProxyError::RequestBodyTimeout {
                    limit: deadline.limit,
                })?,
            None => body.frame().await,
        };
        let Some(frame) = next else {
            break;
        };
        let frame = frame.map_err(|error| ProxyError::RequestBody {
            reason: error.into().to_string(),
            status: StatusCode::BAD_REQUEST,
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let length = buffer.len() + data.len();
        if length > limits.per_request {
            return Err(too_large(limits));
        }
        reserve(length, &mut reservation)?;
        buffer.extend_from_slice(&data);
    }
    tracing::debug!(
        bytes = buffer.len(),
        declared = ?declared,
        left_kib = limits.budget.available_permits(),
        "request body held"
    );
    Ok(HeldBody {
        bytes: buffer.freeze(),
        reservation,
    })
}

fn too_large(limits: &BodyLimits) -> ProxyError {
    ProxyError::RequestBody {
        reason: format!("larger than {} bytes", limits.per_request),
        status: StatusCode::PAYLOAD_TOO_LARGE,
    }
}

fn over_budget(limits: &BodyLimits) -> ProxyError {
    ProxyError::RequestBody {
        reason: format!(
            "the gateway already holds {} bytes of request bodies: try again shortly",
            limits.total
        ),
        status: StatusCode::SERVICE_UNAVAILABLE,
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::Full;

    use super::*;

    #[tokio::test]
    async fn bodies_are_held_within_both_limits_and_released_after() {
        let limits = BodyLimits::new(8 * UNIT, 12 * UNIT);
        let body = |n: usize| Full::new(Bytes::from(vec![b'x'; n]));
        let first = read(body(6 * UNIT), &limits, None).await.unwrap();
        assert_eq!(first.bytes.len(), 6 * UNIT);
        let error = read(body(9 * UNIT), &limits, None).await.err().unwrap();
        assert!(
            matches!(error, ProxyError::RequestBody { status, .. } if status == StatusCode::PAYLOAD_TOO_LARGE)
        );
        // 6 KiB held: 7 more do not fit in 12.
        let error = read(body(7 * UNIT), &limits, None).await.err().unwrap();
        assert!(
            matches!(error, ProxyError::RequestBody { status, .. } if status == StatusCode::SERVICE_UNAVAILABLE)
        );
        drop(first);
        assert!(read(body(7 * UNIT), &limits, None).await.is_ok());
        assert_eq!(limits.budget.available_permits(), 12);
    }

    #[tokio::test]
    async fn a_body_still_arriving_at_the_read_deadline_fails_with_it() {
        use futures_util::StreamExt as _;
        use hyper::body::Frame;
        let limit = std::time::Duration::from_millis(50);
        let deadline = ReadDeadline {
            at: tokio::time::Instant::now() + limit,
            limit,
        };
        // One chunk, then nothing more for ever.
        let stalled = || {
            let chunk = Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from_static(b"{")));
            http_body_util::StreamBody::new(
                futures_util::stream::once(async move { chunk })
                    .chain(futures_util::stream::pending()),
            )
        };
        let error = read(stalled(), &BodyLimits::default(), Some(deadline))
            .await
            .err()
            .unwrap();
        assert!(
            matches!(error, ProxyError::RequestBodyTimeout { limit: l } if l == limit),
            "{error}"
        );
        // A whole body before the deadline reads.
        let deadline = ReadDeadline {
            at: tokio::time::Instant::now() + limit,
            limit,
        };
        let whole = Full::new(Bytes::from_static(b"{}"));
        let held = read(whole, &BodyLimits::default(), Some(deadline))
            .await
            .unwrap();
        assert_eq!(held.bytes, Bytes::from_static(b"{}"));
    }
}
