//! The settings krakend-lua reads (`config.go` in both generations), and
//! the sources they name, read and checked at start-up.

use std::{fmt::Write as _, path::Path};

use md5::{Digest, Md5};
use serde_json::{Map, Value};

/// One namespace's settings.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// The files to run before the code, in order.
    pub sources: Vec<String>,
    /// The code run on the request.
    pub pre: String,
    /// The code run on the answer.
    pub post: String,
    /// Answer without calling the backends (the proxy namespaces).
    pub skip_next: bool,
    /// Open Lua's whole standard library (`io`, `os`, `string`, ...), not
    /// only its base, `package` and `table` libraries.
    pub allow_open_libs: bool,
    /// Read the sources again on every request, as they are then.
    pub live: bool,
}

/// A setting that cannot be used, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsError {
    /// The member's path under the namespace (`sources[1]`, `md5`...).
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for SettingsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

fn error(path: impl Into<String>, message: impl Into<String>) -> SettingsError {
    SettingsError {
        path: path.into(),
        message: message.into(),
    }
}

impl Settings {
    /// Reads the namespace's JSON. krakend-lua skips a member of the wrong
    /// type; here it is refused, since a `pre` that is not text would
    /// silently run nothing.
    pub fn parse(config_json: &str) -> Result<(Settings, Vec<Source>), SettingsError> {
        let value: Value = serde_json::from_str(config_json)
            .map_err(|e| error("", format!("not valid JSON: {e}")))?;
        let Value::Object(map) = value else {
            return Err(error(
                "",
                "must be an object with \"sources\", \"pre\", \"post\"…",
            ));
        };
        let text = |name: &str| -> Result<String, SettingsError> {
            match map.get(name) {
                None | Some(Value::Null) => Ok(String::new()),
                Some(Value::String(s)) => Ok(s.clone()),
                Some(other) => Err(error(
                    name,
                    format!(
                        "must be Lua code as a string, not {}",
                        sepia_json::type_name(other)
                    ),
                )),
            }
        };
        let flag = |name: &str| -> Result<bool, SettingsError> {
            match map.get(name) {
                None | Some(Value::Null) => Ok(false),
                Some(Value::Bool(b)) => Ok(*b),
                Some(other) => Err(error(
                    name,
                    format!(
                        "must be true or false, not {}",
                        sepia_json::type_name(other)
                    ),
                )),
            }
        };
        let sources = match map.get("sources") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, item)| match item {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(error(
                        format!("sources[{i}]"),
                        format!("must be a file path, not {}", sepia_json::type_name(other)),
                    )),
                })
                .collect::<Result<_, _>>()?,
            Some(other) => {
                return Err(error(
                    "sources",
                    format!(
                        "must be a list of file paths, not {}",
                        sepia_json::type_name(other)
                    ),
                ))
            }
        };
        let settings = Settings {
            sources,
            pre: text("pre")?,
            post: text("post")?,
            skip_next: flag("skip_next")?,
            allow_open_libs: flag("allow_open_libs")?,
            live: flag("live")?,
        };
        let loaded = settings.load_sources()?;
        check_checksums(&map, &settings.sources, &loaded)?;
        Ok((settings, loaded))
    }

    /// The sources' text, read now. krakend-lua logs a file it cannot read
    /// and then fails every request with "unable to load required source";
    /// here start-up stops instead.
    pub fn load_sources(&self) -> Result<Vec<Source>, SettingsError> {
        self.sources
            .iter()
            .enumerate()
            .map(|(i, path)| {
                std::fs::read_to_string(path)
                    .map(|text| Source {
                        path: path.clone(),
                        text,
                    })
                    .map_err(|e| {
                        error(
                            format!("sources[{i}]"),
                            format!(
                                "cannot read the Lua source {path:?}: {e} (relative paths are \
                                 read from the directory sepia runs in, as KrakenD reads them)"
                            ),
                        )
                    })
            })
            .collect()
    }
}

/// One source file's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub path: String,
    pub text: String,
}

impl Source {
    /// The file's name without its folders, as krakend-lua names it in
    /// error messages.
    pub fn file_name(&self) -> &str {
        Path::new(&self.path)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or(&self.path)
    }
}

/// `md5`: a map from source path to the hex MD5 of its text. krakend-lua
/// refuses the whole namespace on a mismatch (and then runs no script at
/// all); here start-up stops, so a tampered script is never run and a
/// protecting script is never skipped.
fn check_checksums(
    map: &Map<String, Value>,
    sources: &[String],
    loaded: &[Source],
) -> Result<(), SettingsError> {
    let checksums = match map.get("md5") {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::Object(checksums)) => checksums,
        Some(other) => {
            return Err(error(
                "md5",
                format!(
                    "must map source paths to MD5 sums, not {}",
                    sepia_json::type_name(other)
                ),
            ))
        }
    };
    for (path, expected) in checksums {
        let Value::String(expected) = expected else {
            return Err(error(
                format!("md5.{path}"),
                "must be the hex MD5 sum of the source, as a string",
            ));
        };
        let Some(source) = sources
            .iter()
            .position(|s| s == path)
            .and_then(|i| loaded.get(i))
        else {
            return Err(error(
                format!("md5.{path}"),
                "names a file that is not in \"sources\"",
            ));
        };
        let actual = md5_hex(&source.text);
        if !actual.eq_ignore_ascii_case(expected) {
            return Err(error(
                format!("md5.{path}"),
                format!(
                    "the source's MD5 is {actual}, not {expected}: it changed since the sum \
                     was written"
                ),
            ));
        }
    }
    Ok(())
}

fn md5_hex(text: &str) -> String {
    let digest = Md5::digest(text.as_bytes());
    let mut hex = String::with_capacity(32);
    for byte in digest {
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_read_and_bad_ones_named() {
        let (s, _) = Settings::parse(
            r#"{"pre":"x = 1","post":"y = 2","skip_next":true,"allow_open_libs":true,"live":false}"#,
        )
        .unwrap();
        assert_eq!((s.pre.as_str(), s.post.as_str()), ("x = 1", "y = 2"));
        assert!(s.skip_next && s.allow_open_libs && !s.live);
        let bad = |json: &str| Settings::parse(json).unwrap_err().to_string();
        assert_eq!(
            bad(r#"{"pre": 3}"#),
            "pre: must be Lua code as a string, not a number"
        );
        assert_eq!(
            bad(r#"{"sources": ["a.lua", 2]}"#),
            "sources[1]: must be a file path, not a number"
        );
        assert!(bad(r#"{"sources": ["/no/such.lua"]}"#).starts_with("sources[0]: cannot read"));
    }

    #[test]
    fn checksums_are_checked_against_the_sources() {
        let dir = std::env::temp_dir().join(format!("sepia-lua-md5-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("f.lua");
        std::fs::write(&file, "return 1\n").unwrap();
        let path = file.display().to_string();
        let good = md5_hex("return 1\n");
        let json = |sum: &str| {
            serde_json::json!({"sources": [path], "md5": {path.clone(): sum}}).to_string()
        };
        assert!(Settings::parse(&json(&good)).is_ok());
        let wrong = Settings::parse(&json("00000000000000000000000000000000")).unwrap_err();
        assert!(wrong.message.contains("changed since"), "{wrong}");
        assert_eq!(md5_hex(""), "d41d8cd98f00b204e9800998ecf8427e");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
