//! The access log: a line per request, as KrakenD's router (gin's logger)
//! writes it on the standard output, `[GIN] 2006/01/02 - 15:04:05 | 200 |
//! 1.2ms | 127.0.0.1 | GET "/path"`, or as a JSON object with the
//! `--log-format json` of the application log. `router.disable_access_log`
//! turns it off, `router.logger_skip_paths` leaves paths out. Lines go
//! through a writer thread, so a slow terminal or pipe never holds a
//! request.

use std::{
    fmt::Write as _,
    io::Write as _,
    net::IpAddr,
    sync::{
        atomic::{AtomicBool, Ordering},
        OnceLock,
    },
    time::{Duration, Instant},
};

use http::{Request, Response};
use tracing_appender::non_blocking::{NonBlocking, WorkerGuard};

use crate::body::ResponseBody;

/// The standard output, through the writer thread, once opened.
static WRITER: OnceLock<NonBlocking> = OnceLock::new();

thread_local! {
    /// Each worker's handle on the writer (a clone of one channel), so
    /// that workers never wait on each other to log.
    static LOCAL_WRITER: std::cell::RefCell<Option<NonBlocking>> = const { std::cell::RefCell::new(None) };
    /// The second gin's time column last showed, and its text: a second's
    /// lines share one formatting.
    static CLOCK: std::cell::RefCell<(u64, String)> = const { std::cell::RefCell::new((u64::MAX, String::new())) };
}
/// The lines the writer thread can fall behind by before lines are dropped:
/// half a second of a busy gateway. The channel is allocated whole and
/// touched at start: tracing-appender's default of 128 000 lines held
/// 4 MB of every gateway's memory, a third of an idle one's.
const QUEUED_LINES: usize = 16_384;

/// Lines are JSON objects (`--log-format json`).
static JSON: AtomicBool = AtomicBool::new(false);

/// Opens the writer thread, with lines in the application log's format
/// (text or JSON); lines are written while the guard lives, and those still
/// queued when it is dropped are flushed.
pub fn open() -> Option<WorkerGuard> {
    JSON.store(super::json_lines(), Ordering::Relaxed);
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        // Under a flood, a line is dropped rather than a request held.
        .lossy(true)
        .buffered_lines_limit(QUEUED_LINES)
        .finish(std::io::stdout());
    WRITER.set(writer).ok()?;
    Some(guard)
}

/// An endpoint set's access log settings (`router`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessLog {
    /// `logger_skip_paths`: request paths that get no line.
    pub skip_paths: Vec<String>,
}

/// A request being served, for its line.
pub struct Entry {
    start: Instant,
    method: http::Method,
    target: String,
    client: IpAddr,
    request_id: Option<String>,
}

impl AccessLog {
    /// Starts the line of `request`, unless its path is skipped or no
    /// writer is open.
    pub fn begin<B>(&self, request: &Request<B>, client: IpAddr) -> Option<Entry> {
        WRITER.get()?;
        let path = request.uri().path();
        if self.skip_paths.iter().any(|p| p == path) {
            return None;
        }
        let target = match request.uri().query() {
            Some(query) => format!("{path}?{query}"),
            None => path.to_owned(),
        };
        let request_id = JSON.load(Ordering::Relaxed).then(|| {
            request
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
                .unwrap_or_else(crate::request_context::next_request_id)
        });
        Some(Entry {
            start: Instant::now(),
            method: request.method().clone(),
            target,
            client,
            request_id,
        })
    }
}

impl Entry {
    /// Writes the line, once the answer's head is ready.
    pub fn end(self, response: &Response<ResponseBody>) {
        let Some(writer) = WRITER.get() else { return };
        let latency = self.start.elapsed();
        let status = response.status().as_u16();
        let bytes = crate::body::known_size(response);
        let line = if JSON.load(Ordering::Relaxed) {
            self.json_line(status, latency, bytes)
        } else {
            self.gin_line(status, latency)
        };
        LOCAL_WRITER.with(|local| {
            let mut local = local.borrow_mut();
            let local = local.get_or_insert_with(|| writer.clone());
            let _ = local.write_all(line.as_bytes());
        });
    }

    /// gin's `defaultLogFormatter`, without colors.
    fn gin_line(&self, status: u16, latency: Duration) -> String {
        // gin truncates a latency past a minute to whole seconds.
        let latency = if latency > Duration::from_secs(60) {
            Duration::from_secs(latency.as_secs())
        } else {
            latency
        };
        let mut line = String::with_capacity(96 + self.target.len());
        let _ = writeln!(
            line,
            "[GIN] {} | {status:3} | {:>13} | {:>15} | {:<7} {}",
            gin_time(),
            go_duration(latency),
            self.client,
            self.method.as_str(),
            go_quote(&self.target),
        );
        line
    }

    fn json_line(&self, status: u16, latency: Duration, bytes: Option<u64>) -> String {
        let mut line = serde_json::json!({
            "timestamp": chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "level": "INFO",
            "target": "sepia::access",
            "method": self.method.as_str(),
            "path": self.target,
            "status": status,
            "latency_us": u64::try_from(latency.as_micros()).unwrap_or(u64::MAX),
            "bytes": bytes,
            "client": self.client.to_string(),
            "request_id": self.request_id,
        })
        .to_string();
        line.push('\n');
        line
    }
}

/// Now, as gin's time column shows it (local time, to the second).
fn gin_time() -> String {
    let second = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    CLOCK.with(|clock| {
        let mut clock = clock.borrow_mut();
        if clock.0 != second {
            *clock = (
                second,
                chrono::Local::now()
                    .format("%Y/%m/%d - %H:%M:%S")
                    .to_string(),
            );
        }
        clock.1.clone()
    })
}

/// Go's `Duration.String()`: `812ns`, `4.529µs`, `1.234567ms`, `1.5s`,
/// `2m3.5s`, `1h0m0s`.
pub fn go_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".to_owned();
    }
    // `value` with `digits` decimal places, trailing zeros dropped.
    let decimal = |value: u128, digits: u32| {
        let unit = 10u128.pow(digits);
        let (whole, fraction) = (value / unit, value % unit);
        if fraction == 0 {
            return whole.to_string();
        }
        let fraction = format!("{fraction:0width$}", width = digits as usize);
        format!("{whole}.{}", fraction.trim_end_matches('0'))
    };
    if nanos < 1_000 {
        return format!("{nanos}ns");
    }
    if nanos < 1_000_000 {
        return format!("{}µs", decimal(nanos, 3));
    }
    if nanos < 1_000_000_000 {
        return format!("{}ms", decimal(nanos, 6));
    }
    let seconds = nanos % 60_000_000_000;
    let minutes = (nanos / 60_000_000_000) % 60;
    let hours = nanos / 3_600_000_000_000;
    let mut out = String::new();
    if hours > 0 {
        let _ = write!(out, "{hours}h");
    }
    if hours > 0 || minutes > 0 {
        let _ = write!(out, "{minutes}m");
    }
    let _ = write!(out, "{}s", decimal(seconds, 9));
    out
}

/// Go's `%#v` of a string (`strconv.Quote`).
fn go_quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_written_as_go_writes_them() {
        for (d, text) in [
            (Duration::from_nanos(812), "812ns"),
            (Duration::from_nanos(4_529), "4.529µs"),
            (Duration::from_nanos(1_234_567), "1.234567ms"),
            (Duration::from_millis(2), "2ms"),
            (Duration::from_millis(1_500), "1.5s"),
            (Duration::from_millis(123_500), "2m3.5s"),
            (Duration::from_secs(3_600), "1h0m0s"),
            (Duration::ZERO, "0s"),
        ] {
            assert_eq!(go_duration(d), text);
        }
    }

    #[test]
    fn gin_lines_have_gins_columns() {
        let entry = Entry {
            start: Instant::now(),
            method: http::Method::GET,
            target: "/user/foo?x=\"1\"".into(),
            client: "172.17.0.1".parse().unwrap(),
            request_id: None,
        };
        let line = entry.gin_line(200, Duration::from_nanos(4_529));
        let (_, after_time) = line.split_at("[GIN] 2024/03/07 - 09:05:02".len());
        assert!(line.starts_with("[GIN] "), "{line}");
        assert_eq!(
            after_time,
            " | 200 |       4.529µs |      172.17.0.1 | GET     \"/user/foo?x=\\\"1\\\"\"\n"
        );
        let json: serde_json::Value =
            serde_json::from_str(&entry.json_line(404, Duration::from_micros(1500), Some(9)))
                .unwrap();
        assert_eq!(json["status"], 404);
        assert_eq!(json["latency_us"], 1500);
        assert_eq!(json["path"], "/user/foo?x=\"1\"");
    }
}
