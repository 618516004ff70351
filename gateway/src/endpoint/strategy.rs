//! How an endpoint calls its backends, chosen once when the endpoint is
//! built: the backend phase of a request runs the one strategy, and what it
//! collects goes on to the response phase.

use std::future::Future;

use bytes::Bytes;
use futures_util::{future::join_all, FutureExt};
use http::{HeaderMap, Response, StatusCode};
use sepia_config::{BackendEncoding, OutputEncoding};
use serde_json::{Map, Value};

use super::{
    backend::{BackendAnswer, BackendCall},
    merge::{merge, merge_canonical, CanonicalPart},
    request::Outgoing,
};
use crate::{
    error::ProxyError,
    upstream::{Upstream, UpstreamBody},
};

/// The ways an endpoint calls its backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// `no-op`, no hooks: the backend's answer streamed as it comes.
    Stream,
    /// `no-op` with hooks: the backend's answer read whole for them.
    PassThrough,
    /// One JSON backend with nothing to reshape or add: its body re-encoded
    /// in Go's encoding as it is read, without building a tree.
    SingleEncoded,
    /// One backend, decoded and shaped.
    Single,
    /// Several JSON backends in parallel with nothing to reshape or add:
    /// their bodies re-encoded and their members united without a tree.
    MergeEncoded,
    /// Several backends in parallel, decoded, shaped and merged.
    Merge,
    /// `proxy.sequential`: one after the other, later ones using values of
    /// earlier answers.
    Sequential,
}

impl Strategy {
    /// The strategy of `endpoint`; `has_hooks` when it or a backend has
    /// modifiers.
    pub fn of(endpoint: &sepia_config::Endpoint, has_hooks: bool) -> Self {
        if endpoint.passes_through() {
            return if has_hooks {
                Strategy::PassThrough
            } else {
                Strategy::Stream
            };
        }
        let plain_json = endpoint.backends.iter().all(|b| {
            b.encoding == BackendEncoding::Json && !b.is_collection && !b.shaping.reshapes()
        }) && endpoint.output_encoding == OutputEncoding::Json
            && endpoint.static_response.is_none()
            && endpoint.flatmap.is_none()
            && endpoint.concurrent_calls <= 1
            && !endpoint.sequential;
        match (endpoint.backends.len(), plain_json) {
            (1, true) => Strategy::SingleEncoded,
            (1, false) => Strategy::Single,
            (_, _) if endpoint.sequential => Strategy::Sequential,
            (_, true) => Strategy::MergeEncoded,
            (_, false) => Strategy::Merge,
        }
    }
}

/// What the backends answered.
pub enum Collected {
    /// A `no-op` response, streamed as it is.
    Stream(Response<UpstreamBody>),
    /// A `no-op` response buffered for response modifiers.
    Raw {
        status: StatusCode,
        headers: HeaderMap,
        body: Bytes,
    },
    /// A single backend's 4xx answer, forwarded as it came: the client
    /// learns why it was refused (KrakenD hides it behind a bare status).
    Refused {
        status: StatusCode,
        headers: HeaderMap,
        body: Bytes,
    },
    /// JSON already written in Go's encoding, with no tree built.
    Encoded {
        status: StatusCode,
        body: Vec<u8>,
        complete: bool,
    },
    /// Decoded and merged data.
    Data {
        status: StatusCode,
        data: Map<String, Value>,
        complete: bool,
        /// Whether a backend failed (the data is what the others sent).
        errored: bool,
    },
}

impl Collected {
    /// Whether a backend failed on the way (the answer holds what the
    /// others sent, or the failure is the backend's refusal).
    pub fn errored(&self) -> bool {
        match self {
            Collected::Data { errored, .. } => *errored,
            Collected::Refused { .. } => true,
            Collected::Encoded { complete, .. } => !complete,
            Collected::Stream(_) | Collected::Raw { .. } => false,
        }
    }

    /// The status of the answer (`resp.Metadata.StatusCode`, for the
    /// proxy stage's span).
    pub fn status(&self) -> StatusCode {
        match self {
            Collected::Stream(response) => response.status(),
            Collected::Raw { status, .. }
            | Collected::Refused { status, .. }
            | Collected::Encoded { status, .. }
            | Collected::Data { status, .. } => *status,
        }
    }

    /// Whether the answer is complete, as lura's `IsComplete` says it.
    pub fn is_complete(&self) -> bool {
        match self {
            Collected::Data { complete, .. } | Collected::Encoded { complete, .. } => *complete,
            Collected::Refused { .. } => false,
            // A no-op answer is never marked complete by lura.
            Collected::Stream(_) | Collected::Raw { .. } => false,
        }
    }
}

impl Strategy {
    /// Whether the strategy keeps the endpoint's deadline itself: backends
    /// called in parallel each stop at it, and the answer is what arrived
    /// (lura's parallel merge, both generations).
    pub fn bounds_itself(self) -> bool {
        matches!(self, Strategy::Merge | Strategy::MergeEncoded)
    }
}

/// The limits of one request's backend phase.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// When the endpoint's `timeout` runs out.
    pub deadline: tokio::time::Instant,
    /// The endpoint's `timeout`, for messages.
    pub timeout: std::time::Duration,
    /// lura 1.4 answers `{}`, incomplete, when every parallel backend
    /// failed; lura 2 fails the request.
    pub empty_when_all_fail: bool,
}

/// `work`, stopped at the deadline.
///
/// A plain function, not an `async fn`: an `async fn` keeps its argument
/// beside the timer that holds it, so each bounded backend call would take
/// twice its size.
pub fn bounded<T>(
    limits: Limits,
    work: impl Future<Output = Result<T, ProxyError>>,
) -> impl Future<Output = Result<T, ProxyError>> {
    let timeout = limits.timeout;
    tokio::time::timeout_at(limits.deadline, work)
        .map(move |bounded| bounded.unwrap_or(Err(ProxyError::Timeout(timeout))))
}

/// What backends called in parallel delivered.
struct Gathered<T> {
    /// The parts that arrived, in configuration order.
    parts: Vec<T>,
    /// Every backend answered, each completely.
    complete: bool,
    /// A backend failed.
    errored: bool,
}

/// Runs `strategy` over `backends`. `endpoint` names it in logs.
pub async fn collect(
    strategy: Strategy,
    backends: &[BackendCall],
    outgoing: &Outgoing<'_>,
    upstream: &impl Upstream,
    endpoint: &str,
    limits: Limits,
) -> Result<Collected, ProxyError> {
    let Some(first) = backends.first() else {
        // The configuration check refuses endpoints without backends.
        return Ok(Collected::Data {
            status: StatusCode::OK,
            data: Map::new(),
            complete: true,
            errored: false,
        });
    };
    match strategy {
        Strategy::Stream => {
            // The deadline covers the whole answer, its body too.
            let (response, _) = first.send(upstream, outgoing).await?;
            Ok(Collected::Stream(
                response.map(|body| body.until(limits.deadline)),
            ))
        }
        Strategy::PassThrough => {
            let reply = first.pass_through(upstream, outgoing).await?;
            Ok(Collected::Raw {
                status: reply.status,
                headers: reply.headers,
                body: reply.body,
            })
        }
        Strategy::SingleEncoded => Ok(match first.fetch_encoded(upstream, outgoing).await? {
            Ok((status, body)) => Collected::Encoded {
                status,
                body,
                complete: true,
            },
            Err(answer) => single_backend(answer),
        }),
        Strategy::Single => Ok(single_backend(first.fetch_data(upstream, outgoing).await?)),
        Strategy::MergeEncoded => {
            merge_encoded(backends, outgoing, upstream, endpoint, limits).await
        }
        Strategy::Merge => {
            let calls = backends
                .iter()
                .map(|b| bounded(limits, b.fetch_data(upstream, outgoing)));
            let results = join_all(calls).await;
            let gathered = gather(
                endpoint,
                limits,
                results.into_iter().map(|result| {
                    result
                        .and_then(BackendAnswer::into_success)
                        .map(|(_, data, complete)| (data, complete))
                }),
            )?;
            Ok(Collected::Data {
                status: StatusCode::OK,
                data: merge(gathered.parts),
                complete: gathered.complete,
                errored: gathered.errored,
            })
        }
        Strategy::Sequential => in_sequence(backends, outgoing, upstream, endpoint).await,
    }
}

/// Sorts the answers of backends called in parallel: the parts that
/// arrived, in configuration order. Every backend failing is the
/// endpoint's failure (lura 2's 500), or for lura 1.4 an empty answer.
fn gather<T>(
    endpoint: &str,
    limits: Limits,
    results: impl ExactSizeIterator<Item = Result<(T, bool), ProxyError>>,
) -> Result<Gathered<T>, ProxyError> {
    let count = results.len();
    let mut parts = Vec::with_capacity(count);
    let mut first_error = None;
    let mut complete = true;
    for result in results {
        match result {
            Ok((part, part_complete)) => {
                parts.push(part);
                complete &= part_complete;
            }
            Err(error) => {
                tracing::warn!(endpoint = %endpoint, error = %error, "a backend failed");
                first_error.get_or_insert(error);
            }
        }
    }
    match first_error {
        Some(_) if parts.is_empty() && limits.empty_when_all_fail => Ok(Gathered {
            parts,
            complete: false,
            errored: true,
        }),
        Some(first) if parts.is_empty() => Err(ProxyError::AllBackendsFailed {
            count,
            first: Box::new(first),
        }),
        partial => Ok(Gathered {
            parts,
            complete: complete && partial.is_none(),
            errored: partial.is_some(),
        }),
    }
}

/// Each body re-encoded, then their members united (a later backend wins a
/// clash) without a tree.
async fn merge_encoded(
    backends: &[BackendCall],
    outgoing: &Outgoing<'_>,
    upstream: &impl Upstream,
    endpoint: &str,
    limits: Limits,
) -> Result<Collected, ProxyError> {
    let calls = backends
        .iter()
        .map(|b| bounded(limits, b.fetch_body(upstream, outgoing)));
    let results = join_all(calls).await;
    let encoded = results.into_iter().zip(backends).map(|(result, backend)| {
        let (body, complete) = result?;
        let mut out = Vec::with_capacity(body.len());
        let members = backend.canonical_object(&body, &mut out)?;
        Ok((CanonicalPart::new(out, &members), complete))
    });
    let gathered = gather(endpoint, limits, encoded)?;
    Ok(Collected::Encoded {
        status: StatusCode::OK,
        body: merge_canonical(&gathered.parts),
        complete: gathered.complete,
    })
}

/// Each backend in turn, with the values its `url_pattern` takes from
/// earlier responses. The first backend's failure is the endpoint's; a
/// later one ends the sequence with what arrived so far, marked incomplete
/// (KrakenD's rules).
async fn in_sequence(
    backends: &[BackendCall],
    outgoing: &Outgoing<'_>,
    upstream: &impl Upstream,
    endpoint: &str,
) -> Result<Collected, ProxyError> {
    let mut responses: Vec<Map<String, Value>> = Vec::with_capacity(backends.len());
    let mut raw_bodies: Vec<Option<Bytes>> = Vec::with_capacity(backends.len());
    let mut complete = true;
    let mut errored = false;
    for (position, backend) in backends.iter().enumerate() {
        let answer = match with_references(backend, position, outgoing, &responses, &raw_bodies) {
            Ok(Some(step)) => backend.fetch_data(upstream, &step).await,
            Ok(None) => backend.fetch_data(upstream, outgoing).await,
            Err(error) => Err(error),
        };
        let failure = match answer {
            Ok(BackendAnswer::Data {
                data,
                complete: part_complete,
                raw,
                ..
            }) => {
                responses.push(data);
                raw_bodies.push(raw);
                if part_complete {
                    continue;
                }
                complete = false;
                break;
            }
            Ok(BackendAnswer::Refused {
                status,
                headers,
                body,
                ..
            }) if position == 0 => {
                return Ok(Collected::Refused {
                    status,
                    headers,
                    body,
                })
            }
            Ok(refused) => refused.into_success().err(),
            Err(error) if position == 0 => return Err(error),
            Err(error) => Some(error),
        };
        if let Some(error) = failure {
            tracing::warn!(endpoint = %endpoint, error = %error, "a backend of the sequence failed; the later ones are not called");
        }
        complete = false;
        errored = true;
        break;
    }
    Ok(Collected::Data {
        status: StatusCode::OK,
        data: merge(responses),
        complete,
        errored,
    })
}

/// The request to a sequential backend that uses earlier responses: the
/// endpoint's values, then those its `url_pattern` references, then the
/// propagated ones. `None` when it uses none.
fn with_references<'a>(
    backend: &BackendCall,
    position: usize,
    outgoing: &'a Outgoing<'_>,
    responses: &[Map<String, Value>],
    raw_bodies: &[Option<Bytes>],
) -> Result<Option<Outgoing<'a>>, ProxyError> {
    let propagates = position > 0 && !backend.propagated.is_empty();
    if backend.references.is_empty() && !propagates {
        return Ok(None);
    }
    let mut params = outgoing.params.clone();
    for reference in &backend.references {
        let value =
            reference
                .resolve(responses)
                .ok_or_else(|| ProxyError::MissingResponseValue {
                    url: backend.label(),
                    name: reference.name.clone(),
                    backend: reference.backend,
                })?;
        params.push(value);
    }
    if propagates {
        params.extend(super::sequence::propagated_values(
            &backend.propagated,
            position,
            responses,
            raw_bodies,
        ));
    }
    Ok(Some(Outgoing {
        params,
        query: std::borrow::Cow::Borrowed(outgoing.query.as_ref()),
        headers: outgoing.headers.clone(),
        body: outgoing.body.clone(),
        _body_reservation: None,
        context: outgoing.context.clone(),
    }))
}

/// A single backend's answer as the endpoint's.
fn single_backend(answer: BackendAnswer) -> Collected {
    match answer {
        BackendAnswer::Data {
            status,
            data,
            complete,
            ..
        } => Collected::Data {
            status,
            data,
            complete,
            errored: false,
        },
        BackendAnswer::Refused {
            status,
            headers,
            body,
            ..
        } => Collected::Refused {
            status,
            headers,
            body,
        },
    }
}
