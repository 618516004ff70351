//! The `rss` backend encoding, as krakend-rss decodes a feed: gofeed's
//! universal feed (RSS 2.0 or Atom) as an object of `title`, `description`,
//! `type`, `language`, `copyright`, `author`, `categories`, `custom`,
//! `published`, `updated`, `items` and, with an image, `img_url`; each item
//! with gofeed's JSON names (`title`, `description`, `content`, `link`,
//! `links`, `published`, `publishedParsed`, `author`, `guid`,
//! `categories`, `enclosures`, ...), empty ones left out as gofeed's
//! `omitempty` leaves them.
//!
//! The feeds are read by the rust-syndication project's `rss` and
//! `atom_syndication` crates.

use chrono::{DateTime, FixedOffset};
use serde_json::{json, Map, Value};

/// A feed's text as its object.
pub fn decode(body: &[u8]) -> Result<Map<String, Value>, String> {
    match rss::Channel::read_from(body) {
        Ok(channel) => Ok(from_rss(&channel)),
        Err(rss_error) => match atom_syndication::Feed::read_from(body) {
            Ok(feed) => Ok(from_atom(&feed)),
            Err(atom_error) => Err(format!(
                "not an RSS feed ({rss_error}) nor an Atom one ({atom_error})"
            )),
        },
    }
}

/// Inserts `value` unless it is empty, as `omitempty` does.
fn put(out: &mut Map<String, Value>, key: &str, value: Value) {
    let empty = match &value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    };
    if !empty {
        out.insert(key.to_owned(), value);
    }
}

/// Go's `time.Time` in JSON: RFC 3339 with the nanoseconds it has.
fn go_time(time: &DateTime<FixedOffset>) -> Value {
    Value::String(time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
}

/// An RSS date, parsed when it is one (RFC 822 as RSS writes it).
fn parsed(text: Option<&str>) -> Value {
    text.and_then(|t| DateTime::parse_from_rfc2822(t.trim()).ok())
        .map_or(Value::Null, |t| go_time(&t))
}

/// gofeed's person from RSS's `email (Name)` or `Name <email>`.
fn person(text: &str) -> Value {
    let text = text.trim();
    if text.is_empty() {
        return Value::Null;
    }
    let (name, email) = if let Some((email, rest)) = text.split_once('(') {
        (rest.trim_end_matches(')').trim(), email.trim())
    } else if let Some((name, rest)) = text.split_once('<') {
        (name.trim(), rest.trim_end_matches('>').trim())
    } else if text.contains('@') {
        ("", text)
    } else {
        (text, "")
    };
    let mut out = Map::new();
    put(&mut out, "name", json!(name));
    put(&mut out, "email", json!(email));
    Value::Object(out)
}

/// A list, or `null` when empty (a nil Go slice).
fn list(items: Vec<Value>) -> Value {
    if items.is_empty() {
        Value::Null
    } else {
        Value::Array(items)
    }
}

fn from_rss(channel: &rss::Channel) -> Map<String, Value> {
    let author = channel
        .managing_editor()
        .or(channel.webmaster())
        .map_or(Value::Null, person);
    let mut out = feed_fields(
        channel.title(),
        channel.description(),
        "rss",
        channel.language(),
        channel.copyright(),
        author,
        channel
            .categories()
            .iter()
            .map(|c| json!(c.name()))
            .collect(),
        channel.pub_date(),
        channel.last_build_date(),
    );
    let items = channel.items().iter().map(rss_item).collect();
    out.insert("items".into(), list(items));
    if let Some(image) = channel.image() {
        out.insert("img_url".into(), json!(image.url()));
    }
    out
}

fn rss_item(item: &rss::Item) -> Value {
    let mut out = Map::new();
    put(&mut out, "title", json!(item.title().unwrap_or("")));
    put(
        &mut out,
        "description",
        json!(item.description().unwrap_or("")),
    );
    put(&mut out, "content", json!(item.content().unwrap_or("")));
    put(&mut out, "link", json!(item.link().unwrap_or("")));
    put(
        &mut out,
        "links",
        item.link().map_or(Value::Null, |l| json!([l])),
    );
    put(&mut out, "published", json!(item.pub_date().unwrap_or("")));
    put(&mut out, "publishedParsed", parsed(item.pub_date()));
    put(
        &mut out,
        "author",
        item.author().map_or(Value::Null, person),
    );
    put(
        &mut out,
        "guid",
        json!(item.guid().map(|g| g.value()).unwrap_or("")),
    );
    put(
        &mut out,
        "categories",
        list(item.categories().iter().map(|c| json!(c.name())).collect()),
    );
    if let Some(enclosure) = item.enclosure() {
        let mut one = Map::new();
        put(&mut one, "url", json!(enclosure.url()));
        put(&mut one, "length", json!(enclosure.length()));
        put(&mut one, "type", json!(enclosure.mime_type()));
        out.insert("enclosures".into(), json!([one]));
    }
    Value::Object(out)
}

#[allow(clippy::too_many_arguments)]
fn feed_fields(
    title: &str,
    description: &str,
    kind: &str,
    language: Option<&str>,
    copyright: Option<&str>,
    author: Value,
    categories: Vec<Value>,
    published: Option<&str>,
    updated: Option<&str>,
) -> Map<String, Value> {
    // krakend-rss builds this object itself: every key is there, empty
    // strings and nulls included.
    let mut out = Map::new();
    out.insert("title".into(), json!(title));
    out.insert("description".into(), json!(description));
    out.insert("type".into(), json!(kind));
    out.insert("language".into(), json!(language.unwrap_or("")));
    out.insert("copyright".into(), json!(copyright.unwrap_or("")));
    out.insert("author".into(), author);
    out.insert("categories".into(), list(categories));
    out.insert("custom".into(), Value::Null);
    out.insert("published".into(), json!(published.unwrap_or("")));
    out.insert("updated".into(), json!(updated.unwrap_or("")));
    out
}

fn atom_person(people: &[atom_syndication::Person]) -> Value {
    let Some(first) = people.first() else {
        return Value::Null;
    };
    let mut out = Map::new();
    put(&mut out, "name", json!(first.name()));
    put(&mut out, "email", json!(first.email().unwrap_or("")));
    Value::Object(out)
}

fn from_atom(feed: &atom_syndication::Feed) -> Map<String, Value> {
    let updated = go_time(feed.updated());
    let mut out = feed_fields(
        feed.title().as_str(),
        feed.subtitle().map_or("", |s| s.as_str()),
        "atom",
        feed.lang(),
        feed.rights().map(|r| r.as_str()),
        atom_person(feed.authors()),
        feed.categories().iter().map(|c| json!(c.term())).collect(),
        None,
        updated.as_str(),
    );
    let items = feed.entries().iter().map(atom_entry).collect();
    out.insert("items".into(), list(items));
    if let Some(logo) = feed.logo() {
        out.insert("img_url".into(), json!(logo));
    }
    out
}

fn atom_entry(entry: &atom_syndication::Entry) -> Value {
    let mut out = Map::new();
    put(&mut out, "title", json!(entry.title().as_str()));
    put(
        &mut out,
        "description",
        json!(entry.summary().map_or("", |s| s.as_str())),
    );
    put(
        &mut out,
        "content",
        json!(entry.content().and_then(|c| c.value()).unwrap_or("")),
    );
    let alternate = entry
        .links()
        .iter()
        .find(|l| l.rel() == "alternate")
        .or(entry.links().first());
    put(&mut out, "link", json!(alternate.map_or("", |l| l.href())));
    put(
        &mut out,
        "links",
        list(entry.links().iter().map(|l| json!(l.href())).collect()),
    );
    let updated = go_time(entry.updated());
    put(&mut out, "updated", updated.clone());
    put(&mut out, "updatedParsed", updated);
    if let Some(published) = entry.published() {
        put(&mut out, "published", go_time(published));
        put(&mut out, "publishedParsed", go_time(published));
    }
    put(&mut out, "author", atom_person(entry.authors()));
    put(&mut out, "guid", json!(entry.id()));
    put(
        &mut out,
        "categories",
        list(entry.categories().iter().map(|c| json!(c.term())).collect()),
    );
    let enclosures: Vec<Value> = entry
        .links()
        .iter()
        .filter(|l| l.rel() == "enclosure")
        .map(|l| {
            let mut one = Map::new();
            put(&mut one, "url", json!(l.href()));
            put(&mut one, "length", json!(l.length().unwrap_or("")));
            put(&mut one, "type", json!(l.mime_type().unwrap_or("")));
            Value::Object(one)
        })
        .collect();
    put(&mut out, "enclosures", list(enclosures));
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_rss_feed_is_gofeeds_universal_feed() {
        let body = br#"<?xml version="1.0"?>
<rss version="2.0"><channel>
  <title>showRSS schedule feed</title><link>http://showrss.info</link>
  <description>schedule</description><language>en</language>
  <managingEditor>ed@example.com (Ed Itor)</managingEditor>
  <pubDate>Mon, 02 Jan 2006 15:04:05 +0000</pubDate>
  <image><url>http://img/x.png</url><title>x</title><link>http://showrss.info</link></image>
  <item><title>Episode 1</title><link>http://e/1</link><guid>g1</guid>
    <pubDate>Tue, 03 Jan 2006 10:00:00 +0100</pubDate>
    <category>tv</category>
    <enclosure url="http://e/1.torrent" length="12" type="application/x-bittorrent"/></item>
</channel></rss>"#;
        let feed = decode(body).unwrap();
        assert_eq!(feed["title"], "showRSS schedule feed");
        assert_eq!(feed["type"], "rss");
        assert_eq!(
            feed["author"],
            json!({"name": "Ed Itor", "email": "ed@example.com"})
        );
        assert_eq!(feed["categories"], Value::Null);
        assert_eq!(feed["custom"], Value::Null);
        assert_eq!(feed["updated"], "");
        assert_eq!(feed["img_url"], "http://img/x.png");
        let item = &feed["items"][0];
        assert_eq!(item["title"], "Episode 1");
        assert_eq!(item["links"], json!(["http://e/1"]));
        assert_eq!(item["guid"], "g1");
        assert_eq!(item["publishedParsed"], "2006-01-03T10:00:00+01:00");
        assert_eq!(item["categories"], json!(["tv"]));
        assert_eq!(item["enclosures"][0]["length"], "12");
        assert!(item.get("description").is_none());
    }

    #[test]
    fn an_atom_feed_is_read_too_and_anything_else_refused() {
        let body = br#"<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>Atom feed</title><id>urn:x</id><updated>2006-01-02T15:04:05Z</updated>
  <entry><title>One</title><id>urn:1</id><updated>2006-01-02T15:04:05Z</updated>
    <link href="http://e/1"/><summary>s</summary></entry>
</feed>"#;
        let feed = decode(body).unwrap();
        assert_eq!(feed["title"], "Atom feed");
        assert_eq!(feed["type"], "atom");
        assert_eq!(feed["updated"], "2006-01-02T15:04:05Z");
        assert_eq!(feed["items"][0]["link"], "http://e/1");
        assert_eq!(feed["items"][0]["description"], "s");
        assert!(decode(b"{\"not\": \"a feed\"}").is_err());
    }
}
