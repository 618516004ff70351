//! The gateway's log: tracing-subscriber with a `RUST_LOG`-style filter
//! (default `info`), as text or JSON lines, on the standard error; once the
//! configuration is read, `telemetry/logging` sets its level (unless
//! `RUST_LOG` does), its output and KrakenD's line pattern. The access log
//! is its own ([`access`]).

pub mod access;
mod go_layout;
mod pattern;
pub mod settings;
mod syslog_sink;

use std::{
    io::{IsTerminal, Write},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, OnceLock,
    },
};

use arc_swap::ArcSwapOption;
use tracing::{field::Field, Event, Subscriber};
use tracing_subscriber::{
    fmt::{
        self,
        format::{Format, Full, Writer},
        FmtContext, FormatEvent, FormatFields, MakeWriter,
    },
    layer::SubscriberExt,
    registry::LookupSpan,
    reload,
    util::SubscriberInitExt,
    EnvFilter, Registry,
};

pub use settings::LogSettings;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object a line.
    Json,
}

/// The filter, to set from the configuration.
static FILTER: OnceLock<reload::Handle<EnvFilter, Registry>> = OnceLock::new();
/// KrakenD's line, once `telemetry/logging` asks for it.
static STYLE: ArcSwapOption<KrakendStyle> = ArcSwapOption::const_empty();
/// Lines go to the standard output (`telemetry/logging.stdout`).
static TO_STDOUT: AtomicBool = AtomicBool::new(false);
/// The application log writes JSON lines (`--log-format json`).
static JSON_LINES: AtomicBool = AtomicBool::new(false);
/// The lines written, for go-logging's `%{id}`.
static LINE_ID: AtomicU64 = AtomicU64::new(0);

/// Installs the global subscriber. A bad `RUST_LOG` falls back to `info`
/// with a warning rather than silencing the log.
pub fn init(format: LogFormat) {
    init_at(format, "info");
}

/// The subscriber of `sepia check`: warnings and errors only (plugins'
/// own included), unless `RUST_LOG` asks for more.
pub fn init_for_check() {
    init_at(LogFormat::Text, "warn");
}

fn init_at(format: LogFormat, default_level: &str) {
    let (filter, bad_filter) = match EnvFilter::try_from_default_env() {
        Ok(filter) => (filter, None),
        Err(e) => {
            let had_value = std::env::var_os("RUST_LOG").is_some();
            (
                EnvFilter::new(default_level),
                had_value.then(|| e.to_string()),
            )
        }
    };
    JSON_LINES.store(format == LogFormat::Json, Ordering::Relaxed);
    let (filter, handle) = reload::Layer::new(filter);
    let ansi = std::io::stderr().is_terminal();
    let installed = match format {
        LogFormat::Text => Registry::default()
            .with(filter)
            .with(syslog_sink::SyslogLayer)
            .with(
                fmt::layer()
                    .with_writer(Output)
                    .with_ansi(ansi)
                    .event_format(Lines {
                        sepia: Format::default(),
                    }),
            )
            .try_init(),
        LogFormat::Json => Registry::default()
            .with(filter)
            .with(syslog_sink::SyslogLayer)
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_writer(Output)
                    .with_ansi(false),
            )
            .try_init(),
    };
    if installed.is_err() {
        return;
    }
    let _ = FILTER.set(handle);
    if let Some(error) = bad_filter {
        tracing::warn!(%error, "RUST_LOG is not a valid filter; logging at {default_level}");
    }
}

/// Whether the log writes JSON lines.
pub fn json_lines() -> bool {
    JSON_LINES.load(Ordering::Relaxed)
}

/// Applies `telemetry/logging`: its level unless `RUST_LOG` sets one, its
/// output, and (for text lines) KrakenD's pattern and prefix.
pub fn apply(settings: &LogSettings) {
    if std::env::var_os("RUST_LOG").is_none() {
        if let Some(handle) = FILTER.get() {
            let _ = handle.reload(EnvFilter::new(settings.level));
        }
    }
    TO_STDOUT.store(settings.stdout, Ordering::Relaxed);
    STYLE.store(Some(Arc::new(KrakendStyle {
        prefix: settings.prefix.clone(),
        pattern: settings.pattern.clone(),
        json_message: settings.json_message,
    })));
    if let Err(error) = syslog_sink::open(settings) {
        // KrakenD falls back to its basic logger; the log here goes on
        // where it was going.
        tracing::error!(
            "extra_config.\"{}\".syslog: {error} (set {} to the socket's path if it is elsewhere)",
            settings::NAMESPACE,
            syslog_sink::SOCKET_VARIABLE
        );
    }
}

/// KrakenD's line: a prefix, then go-logging's pattern.
struct KrakendStyle {
    prefix: String,
    pattern: pattern::Pattern,
    json_message: bool,
}

/// The event formatter: Sepia's own lines until `telemetry/logging` asks
/// for KrakenD's.
struct Lines {
    sepia: Format<Full>,
}

impl<S, N> FormatEvent<S, N> for Lines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let Some(style) = STYLE.load_full() else {
            return self.sepia.format_event(ctx, writer, event);
        };
        let mut text = MessageText::default();
        event.record(&mut text);
        let mut message = text.message;
        message.push_str(&text.fields);
        if style.json_message {
            // go-logging writes the message raw into its JSON pattern; it
            // is escaped here so that the line stays JSON.
            let quoted = serde_json::Value::String(message).to_string();
            message = quoted[1..quoted.len() - 1].to_owned();
        }
        let metadata = event.metadata();
        let level = go_logging_level(metadata.level());
        let mut line = style.prefix.clone();
        style.pattern.render(
            &pattern::Line {
                time: chrono::Local::now(),
                level,
                module: "KRAKEND",
                message: &message,
                file: metadata.file(),
                line: metadata.line(),
                target: metadata.target(),
                id: LINE_ID.fetch_add(1, Ordering::Relaxed) + 1,
                color: writer.has_ansi_escapes(),
            },
            &mut line,
        );
        writeln!(writer, "{line}")
    }
}

/// go-logging's name of a level.
fn go_logging_level(level: &tracing::Level) -> &'static str {
    match *level {
        tracing::Level::ERROR => "ERROR",
        tracing::Level::WARN => "WARNING",
        tracing::Level::INFO => "INFO",
        _ => "DEBUG",
    }
}

/// An event's message, then its other fields as ` key=value`.
#[derive(Default)]
struct MessageText {
    message: String,
    fields: String,
}

impl tracing::field::Visit for MessageText {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            use std::fmt::Write as _;
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write as _;
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }
}

/// The standard error, or the standard output once `telemetry/logging`
/// asks for it.
struct Output;

enum OutputWriter {
    Out(std::io::Stdout),
    Err(std::io::Stderr),
}

impl Write for OutputWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            OutputWriter::Out(w) => w.write(buf),
            OutputWriter::Err(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            OutputWriter::Out(w) => w.flush(),
            OutputWriter::Err(w) => w.flush(),
        }
    }
}

impl<'a> MakeWriter<'a> for Output {
    type Writer = OutputWriter;

    fn make_writer(&'a self) -> Self::Writer {
        if TO_STDOUT.load(Ordering::Relaxed) {
            OutputWriter::Out(std::io::stdout())
        } else {
            OutputWriter::Err(std::io::stderr())
        }
    }
}
