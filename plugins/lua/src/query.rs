//! Go's `url.Values` as krakend-lua uses them: a query read with
//! `ParseQuery` and written back with `Encode` (keys sorted, each escaped
//! with `QueryEscape`).

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// What `QueryEscape` escapes: everything but letters, digits and `-_.~`
/// (a space is then written `+`).
const QUERY_ESCAPE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn escape(text: &str) -> String {
    // `%20` can only come from a space: a literal `%` is escaped as `%25`.
    utf8_percent_encode(text, QUERY_ESCAPE)
        .to_string()
        .replace("%20", "+")
}

/// `ParseQuery`: the pairs in order, `+` read as a space.
pub fn parse(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// `Values.Encode`: sorted by key, a key's values in their order.
pub fn encode(pairs: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = pairs.iter().collect();
    // Stable: a key's values keep their order, as in Go's slices.
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = String::new();
    for (key, value) in sorted {
        if !out.is_empty() {
            out.push('&');
        }
        out.push_str(&escape(key));
        out.push('=');
        out.push_str(&escape(value));
    }
    out
}

/// The first value of `key` (gin's `c.Query`).
pub fn first<'a>(pairs: &'a [(String, String)], key: &str) -> &'a str {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map_or("", |(_, v)| v.as_str())
}

/// `Values.Set`: `key` has this one value, in the place of its first.
pub fn set(pairs: &mut Vec<(String, String)>, key: &str, value: &str) {
    pairs.retain(|(k, _)| k != key);
    pairs.push((key.to_owned(), value.to_owned()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_read_and_written_as_go_writes_them() {
        let pairs = parse("b=2&a=x+y&a=%2A~&c=");
        assert_eq!(encode(&pairs), "a=x+y&a=%2A~&b=2&c=");
        assert_eq!(first(&pairs, "a"), "x y");
        let mut pairs = pairs;
        set(&mut pairs, "a", "1/2");
        assert_eq!(encode(&pairs), "a=1%2F2&b=2&c=");
    }
}
