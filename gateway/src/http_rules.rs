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
}
