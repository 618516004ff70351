use abi_stable::{
    std_types::{RString, RVec, Tuple2},
    StableAbi,
};

/// A header name as Go's `textproto.CanonicalMIMEHeaderKey` writes it, the
/// form KrakenD's components see names in (`x-forwarded-for` is
/// `X-Forwarded-For`): the first letter and each letter after a `-` upper
/// case, the others lower case. A name holding a byte that is not a token
/// character (a space, say) is returned unchanged, as Go returns it.
pub fn canonical_header_name(name: &str) -> String {
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if !name.bytes().all(token) {
        return name.to_owned();
    }
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        out.push(if upper {
            c.to_ascii_uppercase()
        } else {
            c.to_ascii_lowercase()
        });
        upper = c == '-';
    }
    out
}

/// An endpoint `{param}` as KrakenD's components see it in lura's
/// `Params`: its first letter upper case (`{id}` is `Id`), the rest as
/// declared.
pub fn lura_param_name(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// One HTTP header. Names are lower-case as the gateway hands them over;
/// values are bytes, since HTTP allows values that are not UTF-8.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Header name, lower-case.
    pub name: RString,
    /// Header value, as received.
    pub value: RVec<u8>,
}

impl Header {
    /// A header from a name (lower-cased here) and a value.
    pub fn new(name: &str, value: impl Into<Vec<u8>>) -> Self {
        Self {
            name: RString::from(name.to_ascii_lowercase()),
            value: RVec::from(value.into()),
        }
    }

    /// The value as text, when it is UTF-8.
    pub fn value_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.value).ok()
    }
}

fn find_header<'a>(headers: &'a [Header], name: &str) -> Option<&'a Header> {
    headers.iter().find(|h| h.name.eq_ignore_ascii_case(name))
}

fn set_header(headers: &mut RVec<Header>, name: &str, value: &str) {
    remove_header(headers, name);
    headers.push(Header::new(name, value.as_bytes()));
}

fn remove_header(headers: &mut RVec<Header>, name: &str) {
    headers.retain(|h| !h.name.eq_ignore_ascii_case(name));
}

/// A client request as an endpoint modifier sees it, before the backends are
/// called. Changes made here are what the backends receive.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// HTTP method, upper-case (`GET`, `POST`, ...).
    pub method: RString,
    /// The request path as the client sent it, without the query.
    pub path: RString,
    /// The raw query string, without the leading `?` (empty when none).
    pub query: RString,
    /// The endpoint's `{param}` values, in the order the endpoint declares
    /// them.
    pub params: RVec<Tuple2<RString, RString>>,
    /// The headers. An endpoint modifier sees all the client's headers;
    /// the backends then receive those the endpoint's `input_headers` lists
    /// and those a hook set or changed. A backend modifier sees what its
    /// backend will receive.
    pub headers: RVec<Header>,
    /// The request body (empty for methods without one).
    pub body: RVec<u8>,
}

impl Request {
    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&Header> {
        find_header(&self.headers, name)
    }

    /// Replaces every header of this name with one value.
    pub fn set_header(&mut self, name: &str, value: &str) {
        set_header(&mut self.headers, name, value)
    }

    /// Removes every header of this name.
    pub fn remove_header(&mut self, name: &str) {
        remove_header(&mut self.headers, name)
    }

    /// The value of an endpoint `{param}`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|p| p.0.as_str() == name)
            .map(|p| p.1.as_str())
    }
}

/// A response as a modifier sees it, after the backends answered and the
/// gateway built the body it is about to send.
///
/// `body` is the encoded body in the endpoint's output encoding (JSON with
/// sorted keys for the default `json` encoding). What the modifier leaves in
/// it is sent as it is, so a modifier that rewrites JSON must write valid
/// JSON back.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The HTTP status the client will receive.
    pub status: u16,
    /// Response headers. The gateway sets `content-length` itself.
    pub headers: RVec<Header>,
    /// The encoded response body.
    pub body: RVec<u8>,
    /// `false` when some backend of the endpoint failed and the body holds
    /// only part of the data (KrakenD's `X-Krakend-Completed: false`).
    pub complete: bool,
}

impl Response {
    /// A complete response with a status, a JSON content type and a body.
    pub fn json(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            headers: RVec::from(vec![Header::new(
                "content-type",
                "application/json; charset=utf-8",
            )]),
            body: RVec::from(body.into()),
            complete: true,
        }
    }

    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&Header> {
        find_header(&self.headers, name)
    }

    /// Replaces every header of this name with one value.
    pub fn set_header(&mut self, name: &str, value: &str) {
        set_header(&mut self.headers, name, value)
    }

    /// Removes every header of this name.
    pub fn remove_header(&mut self, name: &str) {
        remove_header(&mut self.headers, name)
    }
}

/// What the gateway does after a request hook.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub enum RequestFlow {
    /// Go on: call the next modifier, then the backends.
    Continue,
    /// Answer the client with this response; no backend is called and the
    /// response hooks do not run.
    Respond(Response),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_are_canonical_as_go_writes_them() {
        assert_eq!(canonical_header_name("x-forwarded-for"), "X-Forwarded-For");
        assert_eq!(canonical_header_name("X-HEADER"), "X-Header");
        assert_eq!(canonical_header_name("content-md5"), "Content-Md5");
        assert_eq!(canonical_header_name("bad name"), "bad name");
    }

    #[test]
    fn param_names_are_capitalised_as_lura_names_them() {
        assert_eq!(lura_param_name("id"), "Id");
        assert_eq!(lura_param_name("resp0_first.foo"), "Resp0_first.foo");
        assert_eq!(lura_param_name(""), "");
    }
}
