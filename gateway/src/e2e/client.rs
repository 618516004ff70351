//! Sends a spec's request as KrakenD's end-to-end runner does, with Go's
//! `http.DefaultClient`: `User-Agent: Go-http-client/1.1` unless the spec
//! sets one, gzip asked for and undone, up to ten redirects followed by
//! Go's rules (the ones lura's backend client follows too, so both share
//! `go_client`).

use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};

use super::spec::SpecRequest;
use crate::{endpoint::go_client, upstream::backend_client::BackendClient};

/// The most of an answer read (and of it inflated): a spec's answer is
/// compared in memory.
const MAX_BODY: usize = 64 << 20;

/// An answer, after redirects, as Go's client hands it over.
#[derive(Debug)]
pub struct Received {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// Sends `request`; each exchange (redirects are several) within `timeout`.
pub async fn send(
    client: &BackendClient,
    request: &SpecRequest,
    timeout: Duration,
) -> Result<Received, String> {
    let mut headers = HeaderMap::with_capacity(request.headers.len() + 2);
    for (name, value) in &request.headers {
        headers.append(name.clone(), value.clone());
    }
    if !headers.contains_key(header::USER_AGENT) {
        headers.insert(
            header::USER_AGENT,
            HeaderValue::from_static("Go-http-client/1.1"),
        );
    }
    let mut method = request.method.clone();
    let mut url = request.url.clone();
    let mut body = request.body.clone();
    let mut hops = go_client::Hops::default();
    for _ in 0..=go_client::MAX_REDIRECTS {
        let mut hop_headers = headers.clone();
        let gzip = go_client::ask_for_gzip(&mut hop_headers);
        hops.apply(&mut hop_headers);
        frame_known_length(&method, body.len(), &mut hop_headers);
        let uri = url
            .parse()
            .map_err(|e| format!("{url} is not a URL: {e}"))?;
        let mut outgoing = Request::new(Full::new(body.clone()));
        *outgoing.method_mut() = method.clone();
        *outgoing.headers_mut() = hop_headers;
        *outgoing.uri_mut() = uri;
        let (status, mut answer_headers, answer) =
            tokio::time::timeout(timeout, exchange(client, outgoing))
                .await
                .map_err(|_| format!("{method} {url}: no answer within {timeout:?}"))?
                .map_err(|e| format!("{method} {url}: {e}"))?;
        // Go's `http.NewRequest` can send a body of bytes again.
        match go_client::redirect(status, &answer_headers, &url, &method, true) {
            None => {
                let body = if gzip && go_client::is_gzip(&answer_headers) {
                    go_client::forget_encoding(&mut answer_headers);
                    go_client::gunzip(&answer, MAX_BODY)
                        .map_err(|e| format!("{method} {url}: the gzip body: {e}"))?
                } else {
                    answer
                };
                return Ok(Received {
                    status,
                    headers: answer_headers,
                    body,
                });
            }
            Some(Err(reason)) => return Err(format!("{method} {url}: {reason}")),
            Some(Ok(hop)) => {
                hops.follow(hop, &mut method, &mut url, &mut body);
                // The spec's Host names the first request's host only; Go
                // takes each redirect's from its URL.
                headers.remove(header::HOST);
            }
        }
    }
    Err(format!(
        "{method} {url}: stopped after {} redirects",
        go_client::MAX_REDIRECTS
    ))
}

/// One exchange, its body read whole.
async fn exchange(
    client: &BackendClient,
    request: Request<Full<Bytes>>,
) -> Result<(StatusCode, HeaderMap, Bytes), String> {
    let response = client
        .send(request)
        .await
        .map_err(|e| crate::upstream::backend_client::describe(&e))?;
    let (parts, incoming) = response.into_parts();
    let body = Limited::new(incoming, MAX_BODY)
        .collect()
        .await
        .map_err(|e| format!("reading the answer's body: {e}"))?
        .to_bytes();
    Ok((parts.status, parts.headers, body))
}

/// A body of known length, as Go's client frames one from a byte reader:
/// its `Content-Length`; an empty one only on the methods that expect a
/// body (`Content-Length: 0`).
fn frame_known_length(method: &Method, len: usize, headers: &mut HeaderMap) {
    headers.remove(header::TRANSFER_ENCODING);
    if len > 0 || matches!(*method, Method::POST | Method::PUT | Method::PATCH) {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    } else {
        headers.remove(header::CONTENT_LENGTH);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_framed_with_their_length() {
        let framed = |method: Method, len: usize| {
            let mut headers = HeaderMap::new();
            frame_known_length(&method, len, &mut headers);
            headers
                .get(header::CONTENT_LENGTH)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        assert_eq!(framed(Method::GET, 0), None);
        assert_eq!(framed(Method::POST, 0).as_deref(), Some("0"));
        assert_eq!(framed(Method::GET, 5).as_deref(), Some("5"));
        assert_eq!(framed(Method::DELETE, 0), None);
    }
}
