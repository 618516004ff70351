//! The body types the gateway writes.

use bytes::Bytes;
use http_body_util::{Either, Full};

use crate::upstream::UpstreamBody;

/// A response body: a buffer the gateway built, or a backend's body streamed
/// through untouched (`no-op` encoding).
pub type ResponseBody = Either<Full<Bytes>, UpstreamBody>;

/// The content type of every JSON body the gateway writes.
pub const JSON_CONTENT_TYPE: &str = "application/json; charset=utf-8";

/// KrakenD's completeness header, which clients of a KrakenD API rely on.
pub const COMPLETED: &str = "x-krakend-completed";
/// The same, parsed once for response header maps.
pub const COMPLETED_HEADER: http::HeaderName = http::HeaderName::from_static(COMPLETED);

/// A 200 answer with a JSON body the gateway wrote.
pub fn json_response(body: impl Into<Bytes>) -> http::Response<ResponseBody> {
    let mut response = http::Response::new(full(body));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(JSON_CONTENT_TYPE),
    );
    response
}

/// A buffered body.
pub fn full(bytes: impl Into<Bytes>) -> ResponseBody {
    Either::Left(Full::new(bytes.into()))
}

/// The body's size when it is known before it is sent: its exact size, or
/// the `Content-Length` it was given.
pub fn known_size(response: &http::Response<ResponseBody>) -> Option<u64> {
    use hyper::body::Body as _;
    response.body().size_hint().exact().or_else(|| {
        response
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse().ok())
    })
}
