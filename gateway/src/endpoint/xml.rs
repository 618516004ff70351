//! XML as KrakenD CE reads and writes it, through krakend-xml and
//! clbanning/mxj 1.8: a backend's document becomes a map keyed by its root
//! element, attributes as `-name` members, text beside attributes or
//! children as `#text`, repeated elements as arrays, every value a string
//! (mxj casts nothing); a response is written back the same way, keys and
//! attributes sorted, under the single key's element or `<doc>`. The parsing
//! is quick-xml's; what is built from its events is mxj's rules.

use quick_xml::{
    escape::escape,
    events::{BytesStart, Event},
    Reader,
};
use serde_json::{Map, Value};

use super::decode::DecodeError;

/// The tag mxj wraps a map of several keys in.
const DEFAULT_ROOT: &str = "doc";

/// Decodes an XML document; `is_collection` puts it under `collection`, as
/// krakend-xml's collection decoder does.
pub fn decode(body: &[u8], is_collection: bool) -> Result<Map<String, Value>, DecodeError> {
    let mut reader = Reader::from_reader(body);
    let mut buf = Vec::new();
    // Everything before the root element (declaration, comments, stray
    // text) is skipped; what follows the root is never read.
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(start)) => {
                let start = start.into_owned();
                let (key, value) = element(&mut reader, &start, false)?;
                return Ok(wrap(key, value, is_collection));
            }
            Ok(Event::Empty(start)) => {
                let start = start.into_owned();
                let (key, value) = element(&mut reader, &start, true)?;
                return Ok(wrap(key, value, is_collection));
            }
            Ok(Event::Eof) => return Err(DecodeError("the body holds no XML element".into())),
            Ok(_) => {}
            Err(error) => return Err(xml_error(&reader, error)),
        }
        buf.clear();
    }
}

fn wrap(key: String, value: Value, is_collection: bool) -> Map<String, Value> {
    let mut document = Map::new();
    document.insert(key, value);
    if !is_collection {
        return document;
    }
    let mut map = Map::new();
    map.insert("collection".to_owned(), Value::Object(document));
    map
}

fn xml_error(reader: &Reader<&[u8]>, error: quick_xml::Error) -> DecodeError {
    DecodeError(format!(
        "not well-formed XML at byte {}: {error}",
        reader.buffer_position()
    ))
}

/// The characters mxj trims from text (Go's "\t\r\b\n ").
fn trim(text: &str) -> &str {
    text.trim_matches(['\t', '\r', '\u{8}', '\n', ' '])
}

/// One element, from its start tag to its end, as mxj's `xmlToMapParser`
/// builds it: its key, and a string, `""` or a map.
fn element(
    reader: &mut Reader<&[u8]>,
    start: &BytesStart<'_>,
    empty: bool,
) -> Result<(String, Value), DecodeError> {
    let key = String::from_utf8_lossy(start.local_name().as_ref()).into_owned();
    let mut members = Map::new();
    for attribute in start.attributes() {
        let attribute =
            attribute.map_err(|e| DecodeError(format!("a malformed attribute: {e}")))?;
        let name = String::from_utf8_lossy(attribute.key.local_name().as_ref()).into_owned();
        let value = attribute
            .unescape_value()
            .map_err(|e| DecodeError(format!("attribute {name}: {e}")))?;
        members.insert(format!("-{name}"), Value::String(value.into_owned()));
    }
    // A simple element's text, set only while it has no attribute or child.
    let mut simple: Option<String> = None;
    if !empty {
        let mut buf = Vec::new();
        loop {
            let event = reader
                .read_event_into(&mut buf)
                .map_err(|e| xml_error(reader, e))?;
            match event {
                Event::Start(child) => {
                    let child = child.into_owned();
                    let (name, value) = element(reader, &child, false)?;
                    add_child(&mut members, name, value);
                }
                Event::Empty(child) => {
                    let child = child.into_owned();
                    let (name, value) = element(reader, &child, true)?;
                    add_child(&mut members, name, value);
                }
                Event::End(_) => break,
                Event::Text(text) => {
                    let text = text
                        .unescape()
                        .map_err(|e| DecodeError(format!("element {key}: {e}")))?;
                    set_text(&mut members, &mut simple, trim(&text));
                }
                Event::CData(data) => {
                    let text = String::from_utf8_lossy(&data).into_owned();
                    set_text(&mut members, &mut simple, trim(&text));
                }
                Event::Eof => {
                    return Err(DecodeError(format!(
                        "the document ends inside element {key}"
                    )))
                }
                _ => {}
            }
            buf.clear();
        }
    }
    // mxj: a simple element's text wins, even over children that came after
    // it; otherwise the members, or "" for an empty element.
    let value = match simple {
        Some(text) => Value::String(text),
        None if members.is_empty() => Value::String(String::new()),
        None => Value::Object(members),
    };
    Ok((key, value))
}

fn set_text(members: &mut Map<String, Value>, simple: &mut Option<String>, text: &str) {
    if text.is_empty() {
        return;
    }
    if members.is_empty() {
        *simple = Some(text.to_owned());
    } else {
        members.insert("#text".to_owned(), Value::String(text.to_owned()));
    }
}

/// A repeated element becomes an array of its values.
fn add_child(members: &mut Map<String, Value>, name: String, value: Value) {
    match members.get_mut(&name) {
        Some(Value::Array(items)) => items.push(value),
        Some(existing) => {
            let first = std::mem::take(existing);
            *existing = Value::Array(vec![first, value]);
        }
        None => {
            members.insert(name, value);
        }
    }
}

/// Writes `data` as mxj's `Map.Xml()` does; `None` where mxj refuses (an
/// attribute whose value is an object or array), for which krakend-xml
/// writes nothing.
pub fn encode(data: &Map<String, Value>) -> Option<Vec<u8>> {
    let mut out = String::new();
    if data.len() == 1 {
        if let Some((key, value)) = data.iter().next() {
            // A list of anything but objects would leave no element to
            // hold it: mxj wraps the whole map in <doc> then.
            let wrap = matches!(value, Value::Array(items) if items.iter().any(|i| !i.is_object()));
            if wrap {
                write_element(&mut out, DEFAULT_ROOT, &Value::Object(data.clone()))?;
            } else {
                write_element(&mut out, key, value)?;
            }
        }
    } else {
        write_element(&mut out, DEFAULT_ROOT, &Value::Object(data.clone()))?;
    }
    Some(out.into_bytes())
}

/// A scalar as Go's `%v` writes it (numbers as the backend wrote them).
fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(escape(text.as_str()).into_owned()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

fn write_element(out: &mut String, key: &str, value: &Value) -> Option<()> {
    match value {
        Value::Object(members) => {
            out.push('<');
            out.push_str(key);
            let mut attributes: Vec<(&str, String)> = Vec::new();
            for (name, member) in members {
                if let Some(attribute) = name.strip_prefix('-').filter(|a| !a.is_empty()) {
                    attributes.push((attribute, scalar(member)?));
                }
            }
            attributes.sort_by(|a, b| a.0.cmp(b.0));
            for (name, text) in &attributes {
                out.push(' ');
                out.push_str(name);
                out.push_str("=\"");
                out.push_str(text);
                out.push('"');
            }
            if attributes.len() == members.len() {
                out.push_str("/>");
                return Some(());
            }
            if let Some(text) = members.get("#text") {
                if attributes.len() + 1 == members.len() {
                    out.push('>');
                    out.push_str(&scalar(text).unwrap_or_default());
                    close(out, key);
                    return Some(());
                }
                // mxj refuses #text beside other elements.
                return None;
            }
            out.push('>');
            // mxj sorts the elements by key (the map may keep file order).
            let mut elements: Vec<(&String, &Value)> = members
                .iter()
                .filter(|(name, _)| !(name.starts_with('-') && name.len() > 1))
                .collect();
            elements.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            for (name, member) in elements {
                write_element(out, name, member)?;
            }
            close(out, key);
        }
        Value::Array(items) if items.is_empty() => {
            out.push('<');
            out.push_str(key);
            out.push_str("/>");
        }
        Value::Array(items) => {
            for item in items {
                write_element(out, key, item)?;
            }
        }
        Value::Null => {
            out.push('<');
            out.push_str(key);
            out.push_str("/>");
        }
        scalar_value => {
            out.push('<');
            out.push_str(key);
            let text = scalar(scalar_value)?;
            if text.is_empty() {
                out.push_str("/>");
            } else {
                out.push('>');
                out.push_str(&text);
                close(out, key);
            }
        }
    }
    Some(())
}

/// What lura 1.4's own XML render writes (the XML of a version-1/2
/// `negotiate`): Go's `encoding/xml` of the `content` member, nothing
/// without one. `None` where Go refuses the value (an object), which gin's
/// recovery answers with a 500.
pub fn encode_go_content(data: &Map<String, Value>) -> Option<Vec<u8>> {
    let mut out = String::new();
    if let Some(value) = data.get("content") {
        go_value(&mut out, value)?;
    }
    Some(out.into_bytes())
}

/// One value as `encoding/xml` writes an `interface{}` holding it: the
/// element named by its Go type (lura decodes numbers as `json.Number`),
/// a slice as its elements one after the other, `nil` as nothing.
fn go_value(out: &mut String, value: &Value) -> Option<()> {
    match value {
        Value::Null => {}
        Value::String(text) => {
            out.push_str("<string>");
            go_escape_text(out, text);
            out.push_str("</string>");
        }
        Value::Bool(flag) => out.push_str(&format!("<bool>{flag}</bool>")),
        Value::Number(number) => out.push_str(&format!("<Number>{number}</Number>")),
        Value::Array(items) => {
            for item in items {
                go_value(out, item)?;
            }
        }
        Value::Object(_) => return None,
    }
    Some(())
}

/// Go's `xml.EscapeText`: the five markup characters and the three
/// whitespace controls as character references.
fn go_escape_text(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\t' => out.push_str("&#x9;"),
            '\n' => out.push_str("&#xA;"),
            '\r' => out.push_str("&#xD;"),
            // Outside XML's character range: Go writes U+FFFD.
            c if (c as u32) < 0x20 => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
}

fn close(out: &mut String, key: &str) {
    out.push_str("</");
    out.push_str(key);
    out.push('>');
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn documents_decode_as_mxj_reads_them() {
        let body = br#"<?xml version="1.0"?><!-- hi --><user type="admin">
            <name>Elliot</name><tag>a</tag><tag>b</tag><empty/>
            <note lang="en">Hi &amp; bye</note><cdata><![CDATA[<x>]]></cdata>
            <social><facebook>https://facebook.com</facebook></social></user>trailing"#;
        let map = decode(body, false).unwrap();
        assert_eq!(
            Value::Object(map),
            json!({"user": {"-type": "admin", "name": "Elliot", "tag": ["a", "b"], "empty": "",
                "note": {"-lang": "en", "#text": "Hi & bye"}, "cdata": "<x>",
                "social": {"facebook": "https://facebook.com"}}})
        );
        let listed = decode(b"<a><n>1</n></a>", true).unwrap();
        assert_eq!(
            Value::Object(listed),
            json!({"collection": {"a": {"n": "1"}}})
        );
        assert!(decode(b"<a><b></a>", false).is_err());
        assert!(decode(b"not xml", false).is_err());
    }

    #[test]
    fn lura_1s_xml_render_writes_the_content_as_go_does() {
        let of = |value: Value| {
            let data = json!({ "content": value }).as_object().unwrap().clone();
            encode_go_content(&data).map(|b| String::from_utf8(b).unwrap())
        };
        assert_eq!(
            of(json!("a<b> & \"c\"\n")).unwrap(),
            "<string>a&lt;b&gt; &amp; &#34;c&#34;&#xA;</string>"
        );
        assert_eq!(of(json!(42)).unwrap(), "<Number>42</Number>");
        assert_eq!(
            of(json!([true, null, "x"])).unwrap(),
            "<bool>true</bool><string>x</string>"
        );
        assert_eq!(of(json!(null)).unwrap(), "");
        assert_eq!(of(json!({"a": 1})), None);
        let without = json!({"a": 1}).as_object().unwrap().clone();
        assert_eq!(encode_go_content(&without).unwrap(), b"");
    }

    #[test]
    fn maps_encode_as_mxj_writes_them() {
        let one = json!({"user": {"-type": "admin", "name": "Elliot", "n": 42, "ok": true,
            "none": null, "empty": {}, "list": [1, 2], "text": {"-a": "x", "#text": "<t>"}}});
        let Value::Object(one) = one else {
            unreachable!()
        };
        assert_eq!(
            String::from_utf8(encode(&one).unwrap()).unwrap(),
            r#"<user type="admin"><empty/><list>1</list><list>2</list><n>42</n><name>Elliot</name><none/><ok>true</ok><text a="x">&lt;t&gt;</text></user>"#
        );
        let Value::Object(many) = json!({"b": "2", "a": "'1'"}) else {
            unreachable!()
        };
        assert_eq!(
            String::from_utf8(encode(&many).unwrap()).unwrap(),
            "<doc><a>&apos;1&apos;</a><b>2</b></doc>"
        );
        let Value::Object(scalars) = json!({"k": ["x", "y"]}) else {
            unreachable!()
        };
        assert_eq!(
            String::from_utf8(encode(&scalars).unwrap()).unwrap(),
            "<doc><k>x</k><k>y</k></doc>"
        );
        let Value::Object(bad) = json!({"a": {"-b": {"c": 1}}}) else {
            unreachable!()
        };
        assert_eq!(encode(&bad), None);
        assert_eq!(encode(&Map::new()).unwrap(), b"<doc/>");
    }
}
