//! A backend `url_pattern`, split once at start-up into literal text and
//! `{param}` slots so that building a URL per request is a few appends.

/// One piece of a URL pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    /// Index into the endpoint's parameters.
    Param(usize),
}

/// A parsed `url_pattern`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlTemplate {
    pieces: Box<[Piece]>,
    has_query: bool,
}

impl UrlTemplate {
    /// Parses `pattern` against the endpoint's parameter names. The
    /// configuration was validated, so every `{name}` is one of them; an
    /// unknown one stays as literal text.
    pub fn parse(pattern: &str, params: &[String]) -> Self {
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut rest = pattern;
        while let Some(open) = rest.find('{') {
            literal.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            let Some(close) = after.find('}') else {
                break;
            };
            let name = &after[..close];
            match params.iter().position(|p| p == name) {
                Some(index) => {
                    if !literal.is_empty() {
                        pieces.push(Piece::Literal(std::mem::take(&mut literal)));
                    }
                    pieces.push(Piece::Param(index));
                }
                None => {
                    literal.push('{');
                    literal.push_str(name);
                    literal.push('}');
                }
            }
            rest = &after[close + 1..];
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            pieces.push(Piece::Literal(literal));
        }
        Self {
            pieces: pieces.into_boxed_slice(),
            has_query: pattern.contains('?'),
        }
    }

    /// Whether the pattern carries its own query string.
    pub fn has_query(&self) -> bool {
        self.has_query
    }

    /// Appends `host` and the pattern with `values` filled in to `out`.
    pub fn render<S: AsRef<str>>(&self, host: &str, values: &[S], out: &mut String) {
        out.push_str(host);
        for piece in &self.pieces {
            match piece {
                Piece::Literal(text) => out.push_str(text),
                Piece::Param(index) => {
                    if let Some(value) = values.get(*index) {
                        out.push_str(value.as_ref());
                    }
                }
            }
        }
    }
}

/// Whether a path parameter's value, once percent-decoded, holds a dot
/// segment (`.` or `..` between slashes or backslashes): filled into a
/// `url_pattern` it would climb out of the path the pattern names on any
/// backend that resolves dot segments (`/p/{x}` with `x = ..` is `/`).
/// KrakenD forwards such values as they came; Sepia refuses them.
pub fn climbs_out(value: &str) -> bool {
    let decoded = percent_encoding::percent_decode_str(value).decode_utf8_lossy();
    decoded
        .split(['/', '\\'])
        .any(|segment| segment == "." || segment == "..")
}

/// lura 2's `paramChecker` of a raw path parameter: gin's value is the
/// parameter decoded once; lura refuses it when decoding it again fails
/// (`invalid URL escape "%zz"`) or changes it, or when it holds `?` or
/// `#` (`encoded url params`): a value encoded twice smuggles what one
/// decoding would reveal.
pub fn encoded_param(raw: &str) -> Option<String> {
    let once = percent_encoding::percent_decode_str(raw).decode_utf8_lossy();
    let bytes = once.as_bytes();
    let mut i = 0;
    while let Some(offset) = bytes[i..].iter().position(|b| *b == b'%') {
        let at = i + offset;
        let escape = bytes.get(at + 1..at + 3);
        if !escape.is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit)) {
            let end = (at + 3).min(once.len());
            // Go quotes the bad escape as strconv.Quote does.
            let bad = String::from_utf8_lossy(&bytes[at..end]);
            return Some(format!(
                "invalid URL escape {}",
                serde_json::Value::from(bad.as_ref())
            ));
        }
        i = at + 3;
    }
    (once.contains('%') || once.contains('?') || once.contains('#'))
        .then(|| "encoded url params".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lura_2_refuses_parameters_encoded_twice() {
        assert_eq!(encoded_param("a%20b"), None);
        assert_eq!(encoded_param("plain"), None);
        assert_eq!(
            encoded_param("a%2520b").as_deref(),
            Some("encoded url params")
        );
        assert_eq!(
            encoded_param("a%3Fb").as_deref(),
            Some("encoded url params")
        );
        assert_eq!(
            encoded_param("a%23b").as_deref(),
            Some("encoded url params")
        );
        assert_eq!(
            encoded_param("a%25zz").as_deref(),
            Some("invalid URL escape \"%zz\"")
        );
        assert_eq!(
            encoded_param("a%25").as_deref(),
            Some("invalid URL escape \"%\"")
        );
    }

    #[test]
    fn dot_segments_are_found_in_any_spelling() {
        for bad in [
            "..",
            ".",
            "%2e%2e",
            ".%2E",
            "%2E",
            "..%2Fadmin",
            "a%2F..%2Fb",
            "..%5C",
            "%2e%2e%2f",
        ] {
            assert!(climbs_out(bad), "{bad}");
        }
        for fine in ["...", "a..b", ".hidden", "v1.2", "%2e%2e%2e", "a%2Fb"] {
            assert!(!climbs_out(fine), "{fine}");
        }
    }

    #[test]
    fn params_fill_path_and_query() {
        let params = vec!["id".to_owned(), "kind".to_owned()];
        let t = UrlTemplate::parse("/u/{id}/x?type={kind}&id={id}", &params);
        let mut out = String::new();
        t.render("http://h:1", &["7", "a%20b"], &mut out);
        assert_eq!(out, "http://h:1/u/7/x?type=a%20b&id=7");
        assert!(t.has_query());
    }

    #[test]
    fn unknown_placeholders_stay_literal() {
        let t = UrlTemplate::parse("/a/{nope}", &[]);
        let mut out = String::new();
        t.render("", &[] as &[&str], &mut out);
        assert_eq!(out, "/a/{nope}");
        assert!(!t.has_query());
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn any_pattern_renders_without_a_panic(pattern in ".{0,40}", values in prop::collection::vec(".{0,8}", 0..4)) {
            let names: Vec<String> = (0..values.len()).map(|i| format!("p{i}")).collect();
            let mut out = String::new();
            UrlTemplate::parse(&pattern, &names).render("http://h", &values, &mut out);
            prop_assert!(out.starts_with("http://h"));
        }

        #[test]
        fn placeholders_are_replaced_and_the_rest_kept(
            pieces in prop::collection::vec(prop_oneof![
                "[a-z/?=&.]{0,6}".prop_map(Ok),
                (0usize..3).prop_map(Err),
            ], 0..8),
            values in prop::collection::vec("[a-zA-Z0-9%.-]{0,8}", 3),
        ) {
            let names = ["a", "b", "c"].map(String::from);
            let mut pattern = String::new();
            let mut expected = String::new();
            for piece in &pieces {
                match piece {
                    Ok(text) => {
                        pattern.push_str(text);
                        expected.push_str(text);
                    }
                    Err(i) => {
                        pattern.push_str(&format!("{{{}}}", names[*i]));
                        expected.push_str(&values[*i]);
                    }
                }
            }
            let mut out = String::new();
            UrlTemplate::parse(&pattern, &names).render("", &values, &mut out);
            prop_assert_eq!(out, expected);
        }

        #[test]
        fn climbs_out_never_panics(value in ".{0,16}") {
            let _ = climbs_out(&value);
        }
    }
}
