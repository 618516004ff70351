//! KrakenD's log line patterns: go-logging's `%{verb}` and `%{verb:arg}`
//! (`%{time:2006/01/02}`, `%{level}`, `%{message}`, `%{color}`...), parsed
//! once when the configuration is read and rendered for every line.

use std::fmt::Write as _;

use super::go_layout;

/// go-logging's default time layout (RFC 3339 with milliseconds).
const DEFAULT_TIME: &str = "2006-01-02T15:04:05.999Z07:00";

/// One piece of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    /// A chrono format string.
    Time(String),
    /// The level, with a printf string verb's width and precision.
    Level(Width),
    Module(Width),
    Message,
    Program,
    Pid,
    /// The line's sequence number.
    Id,
    /// Where the line was logged from: `file.rs:12` or the whole path.
    File {
        long: bool,
    },
    /// The logging code's module path (go-logging's function and package
    /// verbs).
    Target,
    /// A color for the level, or `reset`; written only to a terminal.
    Color {
        reset: bool,
    },
}

/// A `%-8s`-like width and precision.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Width {
    left: bool,
    width: usize,
    precision: Option<usize>,
}

impl Width {
    /// `-8s`, `.1s`, `5s` (go-logging's `%{level:-8s}`, a `fmt` verb
    /// without its `%`); empty for none.
    fn parse(arg: &str) -> Result<Width, String> {
        if arg.is_empty() {
            return Ok(Width::default());
        }
        let bad = || format!("\"{arg}\" is not a string format such as -8s or .1s");
        let spec = arg
            .strip_prefix('%')
            .unwrap_or(arg)
            .strip_suffix('s')
            .ok_or_else(bad)?;
        let (left, spec) = match spec.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, spec),
        };
        let (width, precision) = match spec.split_once('.') {
            Some((w, p)) => (w, Some(p.parse().map_err(|_| bad())?)),
            None => (spec, None),
        };
        let width = if width.is_empty() {
            0
        } else {
            width.parse().map_err(|_| bad())?
        };
        Ok(Width {
            left,
            width,
            precision,
        })
    }

    fn write(self, out: &mut String, text: &str) {
        let text: String = match self.precision {
            Some(p) => text.chars().take(p).collect(),
            None => text.to_owned(),
        };
        let pad = self.width.saturating_sub(text.chars().count());
        if !self.left {
            out.extend(std::iter::repeat_n(' ', pad));
        }
        out.push_str(&text);
        if self.left {
            out.extend(std::iter::repeat_n(' ', pad));
        }
    }
}

/// A parsed pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    pieces: Vec<Piece>,
}

/// What one line says.
pub struct Line<'a> {
    pub time: chrono::DateTime<chrono::Local>,
    /// go-logging's level name (`WARNING`, `INFO`...).
    pub level: &'a str,
    pub module: &'a str,
    pub message: &'a str,
    pub file: Option<&'a str>,
    pub line: Option<u32>,
    pub target: &'a str,
    pub id: u64,
    pub color: bool,
}

impl Pattern {
    pub fn parse(pattern: &str) -> Result<Pattern, String> {
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut rest = pattern;
        while let Some(start) = rest.find("%{") {
            text.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| format!("\"%{{{after}\" is not closed with }}"))?;
            let (verb, arg) = match after[..end].split_once(':') {
                Some((verb, arg)) => (verb, arg),
                None => (&after[..end], ""),
            };
            if !text.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut text)));
            }
            pieces.push(match verb {
                "time" => Piece::Time(go_layout::to_strftime(if arg.is_empty() {
                    DEFAULT_TIME
                } else {
                    arg
                })),
                "level" => Piece::Level(Width::parse(arg)?),
                "module" => Piece::Module(Width::parse(arg)?),
                "message" => Piece::Message,
                "program" => Piece::Program,
                "pid" => Piece::Pid,
                "id" => Piece::Id,
                "shortfile" => Piece::File { long: false },
                "longfile" => Piece::File { long: true },
                "shortfunc" | "longfunc" | "shortpkg" | "longpkg" | "callpath" => Piece::Target,
                "color" => Piece::Color {
                    reset: arg == "reset",
                },
                other => {
                    return Err(format!(
                        "%{{{other}}} is not a log pattern verb: use time, level, module, message, program, pid, id, shortfile, longfile, shortfunc, color"
                    ))
                }
            });
            rest = &after[end + 1..];
        }
        text.push_str(rest);
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        Ok(Pattern { pieces })
    }

    /// Appends `line` in this pattern to `out`.
    pub fn render(&self, line: &Line<'_>, out: &mut String) {
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Time(format) => {
                    let _ = write!(out, "{}", line.time.format(format));
                }
                Piece::Level(width) => width.write(out, line.level),
                Piece::Module(width) => width.write(out, line.module),
                Piece::Message => out.push_str(line.message),
                Piece::Program => out.push_str("sepia"),
                Piece::Pid => {
                    let _ = write!(out, "{}", std::process::id());
                }
                Piece::Id => {
                    let _ = write!(out, "{:03x}", line.id);
                }
                Piece::File { long } => {
                    let file = line.file.unwrap_or("???");
                    let file = if *long {
                        file
                    } else {
                        file.rsplit('/').next().unwrap_or(file)
                    };
                    let _ = write!(out, "{file}:{}", line.line.unwrap_or(0));
                }
                Piece::Target => out.push_str(line.target),
                Piece::Color { reset } if line.color => {
                    out.push_str(if *reset {
                        "\x1b[0m"
                    } else {
                        level_color(line.level)
                    });
                }
                Piece::Color { .. } => {}
            }
        }
    }
}

/// go-logging's colors by level.
fn level_color(level: &str) -> &'static str {
    match level {
        "CRITICAL" => "\x1b[35m",
        "ERROR" => "\x1b[31m",
        "WARNING" => "\x1b[33m",
        "NOTICE" => "\x1b[32m",
        "DEBUG" => "\x1b[36m",
        _ => "\x1b[37m",
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn line<'a>(level: &'a str, message: &'a str, color: bool) -> Line<'a> {
        Line {
            time: chrono::Local.with_ymd_and_hms(2024, 3, 7, 9, 5, 2).unwrap(),
            level,
            module: "KRAKEND",
            message,
            file: Some("gateway/src/startup.rs"),
            line: Some(12),
            target: "sepia::startup",
            id: 10,
            color,
        }
    }

    fn render(pattern: &str, line: &Line<'_>) -> String {
        let mut out = String::new();
        Pattern::parse(pattern).unwrap().render(line, &mut out);
        out
    }

    #[test]
    fn krakends_patterns_render_as_go_logging_renders_them() {
        let default =
            " %{time:2006/01/02 - 15:04:05.000} %{color}▶ %{level}%{color:reset} %{message}";
        assert_eq!(
            render(default, &line("INFO", "listening", false)),
            " 2024/03/07 - 09:05:02.000 ▶ INFO listening"
        );
        assert_eq!(
            render(default, &line("ERROR", "x", true)),
            " 2024/03/07 - 09:05:02.000 \x1b[31m▶ ERROR\x1b[0m x"
        );
        assert_eq!(
            render(
                "[%{level:.1s}] %{module:-9s}| %{shortfile} %{id}",
                &line("WARNING", "m", false)
            ),
            "[W] KRAKEND  | startup.rs:12 00a"
        );
    }

    #[test]
    fn unknown_verbs_and_open_braces_are_refused() {
        assert!(Pattern::parse("%{nope}").unwrap_err().contains("%{nope}"));
        assert!(Pattern::parse("%{time").is_err());
        assert!(Pattern::parse("%{level:8}").is_err());
        assert!(Pattern::parse("%{level:-8s} %{module:5s}").is_ok());
    }
}
