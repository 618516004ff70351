//! What a backend sees of lura's HTTP client, Go's `http.DefaultClient`, in
//! both generations: it asks for gzip when the request does not say
//! otherwise and undoes it, and it follows up to ten redirects, as a
//! browser would (a 303, or a 301/302 after a POST, turns into a GET without
//! body), with a `Referer` and without credentials on another host.

use std::io::Read;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, StatusCode};

/// Go's limit: the eleventh redirect fails the call.
pub const MAX_REDIRECTS: usize = 10;

/// Adds `Accept-Encoding: gzip` as Go's transport does, unless the
/// request names an encoding or a range; whether it did (and so undoes
/// gzip on the answer).
pub fn ask_for_gzip(headers: &mut HeaderMap) -> bool {
    if headers.contains_key(header::ACCEPT_ENCODING) || headers.contains_key(header::RANGE) {
        return false;
    }
    headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("gzip"));
    true
}

/// Frames a forwarded body as Go's client frames what lura hands it: the
/// client's body is a stream of unknown length, so a body goes chunked
/// (no `Content-Length`); an empty one on `POST`, `PUT` or `PATCH` is
/// announced with `Content-Length: 0` (Go's transfer writer always sends
/// it for those methods), other methods send neither.
pub fn frame_body(method: &http::Method, body_len: usize, headers: &mut HeaderMap) {
    headers.remove(header::CONTENT_LENGTH);
    headers.remove(header::TRANSFER_ENCODING);
    if body_len > 0 {
        headers.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
    } else if matches!(
        *method,
        http::Method::POST | http::Method::PUT | http::Method::PATCH
    ) {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    }
}

/// Whether an answer is gzip the transport asked for.
pub fn is_gzip(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_ENCODING)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"))
}

/// Undoes gzip, refusing more than `limit` bytes of output (a small body
/// may inflate a thousandfold).
pub fn gunzip(body: &[u8], limit: usize) -> std::io::Result<Bytes> {
    let mut out = Vec::with_capacity(body.len() * 4);
    let mut decoder = flate2::read::GzDecoder::new(body).take(limit as u64 + 1);
    decoder.read_to_end(&mut out)?;
    if out.len() > limit {
        return Err(std::io::Error::other(format!(
            "the gzip body inflates past {limit} bytes"
        )));
    }
    Ok(Bytes::from(out))
}

/// Removes what no longer holds once the body is inflated, as Go does.
pub fn forget_encoding(headers: &mut HeaderMap) {
    headers.remove(header::CONTENT_ENCODING);
    headers.remove(header::CONTENT_LENGTH);
}

/// The next request of a redirect: its URL, method, and whether the body
/// goes with it.
#[derive(Debug, PartialEq, Eq)]
pub struct Redirect {
    pub url: String,
    pub method: Method,
    pub keeps_body: bool,
}

/// Where an answer redirects to, when it is a redirect Go follows;
/// `Err` when its `Location` is not a URL. `replays_body`: the request has
/// no body, or one Go can send again (its `GetBody`); without it Go does
/// not follow a 307 or 308, and the answer is the request's own.
pub fn redirect(
    status: StatusCode,
    headers: &HeaderMap,
    from: &str,
    method: &Method,
    replays_body: bool,
) -> Option<Result<Redirect, String>> {
    let (method, keeps_body) = match status.as_u16() {
        301..=303 => {
            // Go keeps GET and HEAD, turns anything else into a GET.
            if *method == Method::GET || *method == Method::HEAD {
                (method.clone(), false)
            } else {
                (Method::GET, false)
            }
        }
        307 | 308 if replays_body => (method.clone(), true),
        _ => return None,
    };
    let location = headers.get(header::LOCATION)?.to_str().ok()?;
    let target = url::Url::parse(from)
        .and_then(|base| base.join(location))
        .map_err(|e| format!("its Location {location:?} is not a URL: {e}"));
    Some(target.map(|url| Redirect {
        url: url.to_string(),
        method,
        keeps_body,
    }))
}

/// What the redirects so far change in the next request's headers:
/// `Referer` is the URL left (not from https to http), and credentials stay
/// behind once a hop went to another host.
#[derive(Debug, Default)]
pub struct Hops {
    /// `None` before any redirect (the request's own `Referer` stands);
    /// then the URL left, or nothing after a downgrade to http.
    referer: Option<Option<HeaderValue>>,
    strip_credentials: bool,
}

impl Hops {
    /// Records a redirect from `from` to `to`.
    pub fn advance(&mut self, from: &str, to: &str) {
        let host = |u: &str| {
            url::Url::parse(u)
                .ok()
                .and_then(|u| u.host_str().map(str::to_owned))
        };
        if host(from) != host(to) {
            self.strip_credentials = true;
        }
        let downgrade = from.starts_with("https://") && to.starts_with("http://");
        self.referer = Some(if downgrade {
            None
        } else {
            HeaderValue::from_str(from).ok()
        });
    }

    /// Moves the next request on to `hop`: its method and URL, and no body
    /// unless the redirect keeps it.
    pub fn follow(
        &mut self,
        hop: Redirect,
        method: &mut Method,
        url: &mut String,
        body: &mut Bytes,
    ) {
        self.advance(url, &hop.url);
        if !hop.keeps_body {
            *body = Bytes::new();
        }
        *method = hop.method;
        *url = hop.url;
    }

    /// Applies what the redirects so far change to `headers`.
    pub fn apply(&self, headers: &mut HeaderMap) {
        if self.strip_credentials {
            for name in [
                header::AUTHORIZATION,
                header::COOKIE,
                header::WWW_AUTHENTICATE,
            ] {
                headers.remove(name);
            }
            headers.remove("cookie2");
        }
        match &self.referer {
            None => {}
            Some(Some(referer)) => {
                headers.insert(header::REFERER, referer.clone());
            }
            Some(None) => {
                headers.remove(header::REFERER);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_is_asked_for_only_when_nothing_else_is() {
        let mut headers = HeaderMap::new();
        assert!(ask_for_gzip(&mut headers));
        assert_eq!(headers[header::ACCEPT_ENCODING], "gzip");
        let mut own = HeaderMap::new();
        own.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("br"));
        assert!(!ask_for_gzip(&mut own));
        assert_eq!(own[header::ACCEPT_ENCODING], "br");
    }

    #[test]
    fn gzip_inflates_within_its_limit() {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(&[b'a'; 10_000]).unwrap();
        let packed = encoder.finish().unwrap();
        assert_eq!(gunzip(&packed, 10_000).unwrap().len(), 10_000);
        assert!(gunzip(&packed, 9_999).is_err());
        assert!(gunzip(b"not gzip", 100).is_err());
    }

    #[test]
    fn redirects_follow_gos_rules() {
        let mut headers = HeaderMap::new();
        headers.insert(header::LOCATION, HeaderValue::from_static("/b?x=1"));
        let from = "http://h:1/a/b";
        let hop = redirect(StatusCode::FOUND, &headers, from, &Method::POST, true)
            .unwrap()
            .unwrap();
        assert_eq!(
            hop,
            Redirect {
                url: "http://h:1/b?x=1".into(),
                method: Method::GET,
                keeps_body: false
            }
        );
        let hop = redirect(
            StatusCode::TEMPORARY_REDIRECT,
            &headers,
            from,
            &Method::POST,
            true,
        )
        .unwrap()
        .unwrap();
        assert_eq!((hop.method, hop.keeps_body), (Method::POST, true));
        // A body Go cannot send again: the 307 is the answer, whatever its
        // Location says.
        let mut unparsable = HeaderMap::new();
        unparsable.insert(header::LOCATION, HeaderValue::from_static("http://[::1"));
        for headers in [&headers, &unparsable] {
            let status = StatusCode::TEMPORARY_REDIRECT;
            assert!(redirect(status, headers, from, &Method::POST, false).is_none());
        }
        assert!(redirect(StatusCode::NOT_MODIFIED, &headers, from, &Method::GET, true).is_none());
        let credentials = || {
            let mut headers = HeaderMap::new();
            headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer x"));
            headers
        };
        let mut hops = Hops::default();
        let mut first = credentials();
        first.insert(
            header::REFERER,
            HeaderValue::from_static("https://client.example/"),
        );
        hops.apply(&mut first);
        assert_eq!(
            first[header::REFERER],
            "https://client.example/",
            "before any redirect"
        );
        hops.advance("http://h:1/a", "http://h:1/b");
        let mut same = credentials();
        hops.apply(&mut same);
        assert_eq!(same[header::REFERER], "http://h:1/a");
        assert!(same.contains_key(header::AUTHORIZATION));
        // Once another host was visited, credentials stay behind for good.
        hops.advance("https://h:1/b", "http://b.example/y");
        hops.advance("http://b.example/y", "http://h:1/c");
        let mut away = credentials();
        hops.apply(&mut away);
        assert!(!away.contains_key(header::AUTHORIZATION));
        assert_eq!(away[header::REFERER], "http://b.example/y");
    }

    #[test]
    fn bodies_are_framed_as_gos_client_frames_them() {
        let framed = |method: http::Method, len: usize| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("12"));
            frame_body(&method, len, &mut headers);
            (
                headers.get(header::CONTENT_LENGTH).cloned(),
                headers.get(header::TRANSFER_ENCODING).cloned(),
            )
        };
        assert_eq!(
            framed(http::Method::POST, 12),
            (None, Some(HeaderValue::from_static("chunked")))
        );
        assert_eq!(
            framed(http::Method::POST, 0),
            (Some(HeaderValue::from_static("0")), None)
        );
        assert_eq!(framed(http::Method::GET, 0), (None, None));
    }
}
