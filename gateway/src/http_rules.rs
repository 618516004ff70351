//! What HTTP/1.1 itself forbids in a request, refused before any hook or
//! route sees it, as Go's server (under KrakenD) refuses it: a missing,
//! doubled or malformed `Host` (RFC 9112 §3.2: 400), and any transfer coding
//! but one `chunked` (501). A proxy that let these through would read the
//! request one way while a backend reads it another.

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode, Version};

use crate::body::{full, ResponseBody};

/// The refusal of a request HTTP does not allow, or `None`.
pub fn refusal<B>(request: &Request<B>) -> Option<Response<ResponseBody>> {
    let headers = request.headers();
    if request.version() == Version::HTTP_11 {
        let mut hosts = headers.get_all(header::HOST).iter();
        match (hosts.next(), hosts.next()) {
            (None, _) => {
                return Some(refuse(
                    StatusCode::BAD_REQUEST,
                    "400 Bad Request: missing required Host header",
                ))
            }
            (Some(_), Some(_)) => {
                return Some(refuse(
                    StatusCode::BAD_REQUEST,
                    "400 Bad Request: too many Host headers",
                ))
            }
            (Some(host), None) if !valid_host(host) => {
                return Some(refuse(
                    StatusCode::BAD_REQUEST,
                    "400 Bad Request: malformed Host header",
                ))
            }
            _ => {}
        }
    }
    let mut codings = headers.get_all(header::TRANSFER_ENCODING).iter();
    if let Some(first) = codings.next() {
        let single_chunked = codings.next().is_none()
            && first
                .to_str()
                .is_ok_and(|v| v.trim().eq_ignore_ascii_case("chunked"));
        if !single_chunked {
            return Some(refuse(
                StatusCode::NOT_IMPLEMENTED,
                "Unsupported transfer encoding",
            ));
        }
    }
    None
}

/// A `Host` value as Go's `httpguts.ValidHostHeader` accepts it: empty, or
/// an authority without user information.
fn valid_host(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    if bytes.is_empty() {
        return true;
    }
    !bytes.contains(&b'@')
        && std::str::from_utf8(bytes)
            .ok()
            .and_then(|text| text.parse::<http::uri::Authority>().ok())
            .is_some()
}

/// Go's refusal of an HTTP/1 head larger than its server reads
/// (`max_header_bytes` and 4 KiB of slack), or `None`. hyper's own bound,
/// its read buffer, is only approximate: a head that arrives in one read
/// may overshoot it. The head is measured as written on the wire.
pub fn oversized_head<B>(request: &Request<B>, max_head: usize) -> Option<Response<ResponseBody>> {
    if request.version() == Version::HTTP_2 {
        // HTTP/2 header lists are bounded by the connection's setting.
        return None;
    }
    let target = request
        .uri()
        .path_and_query()
        .map_or(1, |p| p.as_str().len());
    // "METHOD target HTTP/1.1\r\n", "name: value\r\n" each, "\r\n".
    let mut size = request.method().as_str().len() + target + 12;
    for (name, value) in request.headers() {
        size += name.as_str().len() + value.len() + 4;
        if size > max_head {
            return Some(refuse(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "431 Request Header Fields Too Large",
            ));
        }
    }
    None
}

fn refuse(status: StatusCode, text: &'static str) -> Response<ResponseBody> {
    let mut response = Response::new(full(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(version: Version, headers: &[(&str, &str)]) -> Request<()> {
        let mut builder = Request::builder().uri("/x").version(version);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap()
    }

    fn status(request: &Request<()>) -> Option<u16> {
        refusal(request).map(|r| r.status().as_u16())
    }

    #[test]
    fn host_rules_of_http_1_1() {
        assert_eq!(
            status(&request(
                Version::HTTP_11,
                &[("host", "api.example.com:8080")]
            )),
            None
        );
        assert_eq!(status(&request(Version::HTTP_11, &[])), Some(400));
        assert_eq!(
            status(&request(Version::HTTP_11, &[("host", "a"), ("host", "b")])),
            Some(400)
        );
        assert_eq!(
            status(&request(Version::HTTP_11, &[("host", "user@evil")])),
            Some(400)
        );
        assert_eq!(
            status(&request(Version::HTTP_11, &[("host", "a b")])),
            Some(400)
        );
        // HTTP/1.0 needs none, HTTP/2 names its authority otherwise.
        assert_eq!(status(&request(Version::HTTP_10, &[])), None);
        assert_eq!(status(&request(Version::HTTP_2, &[])), None);
    }

    #[test]
    fn only_one_chunked_coding_is_accepted() {
        let host = ("host", "h");
        assert_eq!(
            status(&request(
                Version::HTTP_11,
                &[host, ("transfer-encoding", "chunked")]
            )),
            None
        );
        for bad in ["chunked, chunked", "gzip, chunked", "identity"] {
            assert_eq!(
                status(&request(
                    Version::HTTP_11,
                    &[host, ("transfer-encoding", bad)]
                )),
                Some(501),
                "{bad}"
            );
        }
        assert_eq!(
            status(&request(
                Version::HTTP_11,
                &[
                    host,
                    ("transfer-encoding", "chunked"),
                    ("transfer-encoding", "chunked")
                ]
            )),
            Some(501)
        );
    }

    #[test]
    fn an_http_1_head_over_the_limit_is_go_s_431() {
        let head = request(
            Version::HTTP_11,
            &[("host", "h"), ("x-big", &"a".repeat(100))],
        );
        // GET /x HTTP/1.1 (16), host: h (9), x-big: a… (109), blank line.
        assert!(oversized_head(&head, 140).is_none());
        let refused = oversized_head(&head, 120).unwrap();
        assert_eq!(refused.status(), 431);
        assert_eq!(refused.headers()[header::CONNECTION], "close");
        let http2 = request(Version::HTTP_2, &[("x-big", &"a".repeat(100))]);
        assert!(oversized_head(&http2, 10).is_none());
    }
}
