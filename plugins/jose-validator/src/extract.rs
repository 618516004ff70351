//! Where the token is: the configured header (`Authorization`, optionally
//! with its `Bearer ` prefix), else the configured cookie; go-auth0's
//! `FromMultiple` order.

use sepia_plugin_api::Request;

use crate::settings::Settings;

/// The token of `request`, when it carries one.
pub fn token<'a>(request: &'a Request, settings: &Settings) -> Option<&'a str> {
    from_header(request, settings).or_else(|| from_cookie(request, &settings.cookie_key))
}

fn from_header<'a>(request: &'a Request, settings: &Settings) -> Option<&'a str> {
    let raw = request.header(&settings.auth_header)?.value_str()?;
    let has_bearer = raw.len() > 7 && raw.as_bytes()[..7].eq_ignore_ascii_case(b"bearer ");
    if has_bearer {
        return Some(&raw[7..]);
    }
    // krakend-jose 1.4 (go-auth0 1) takes only `Bearer` tokens from the
    // header; the current one takes the header's value as it is.
    (settings.krakend2 && !raw.is_empty()).then_some(raw)
}

/// Go's `Request.Cookie`: the first cookie of that name in any `Cookie`
/// header, its value unquoted.
fn from_cookie<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("cookie"))
        .filter_map(|h| h.value_str())
        .flat_map(|line| line.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| {
            value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value)
        })
        .filter(|value| !value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sepia_plugin_api::{Header, RString, RVec};

    fn request(headers: &[(&str, &str)]) -> Request {
        Request {
            method: RString::from("GET"),
            path: RString::from("/"),
            query: RString::new(),
            params: RVec::new(),
            headers: headers
                .iter()
                .map(|(n, v)| Header::new(n, v.as_bytes()))
                .collect(),
            body: RVec::new(),
        }
    }

    fn settings(version: u64, extra: &str) -> Settings {
        let config = format!(
            r#"{{"alg":"HS256","jwk_local_path":"/k","disable_jwk_security":true{extra}}}"#
        );
        Settings::parse(&config, version).unwrap()
    }

    #[test]
    fn header_then_cookie_in_each_generation() {
        let v3 = settings(3, "");
        let v2 = settings(2, "");
        let bearer = request(&[
            ("authorization", "BEARER a.b.c"),
            ("cookie", "access_token=x.y.z"),
        ]);
        assert_eq!(token(&bearer, &v3), Some("a.b.c"));
        assert_eq!(token(&bearer, &v2), Some("a.b.c"));
        let bare = request(&[
            ("authorization", "a.b.c"),
            ("cookie", "other=1; access_token=\"x.y.z\""),
        ]);
        assert_eq!(token(&bare, &v3), Some("a.b.c"));
        assert_eq!(token(&bare, &v2), Some("x.y.z"));
        assert_eq!(token(&request(&[]), &v3), None);
        let custom = settings(3, r#","auth_header_name":"X-Token","cookie_key":"jwt""#);
        let custom_request = request(&[("x-token", "Bearer t.o.k"), ("cookie", "jwt=c.o.o")]);
        assert_eq!(token(&custom_request, &custom), Some("t.o.k"));
        assert_eq!(
            token(&request(&[("cookie", "jwt=c.o.o")]), &custom),
            Some("c.o.o")
        );
    }
}
