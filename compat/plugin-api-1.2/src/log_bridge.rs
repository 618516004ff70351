//! Sends this plugin library's `tracing` events and panic messages to the
//! gateway's log. A `cdylib` has its own copy of tracing's global dispatcher,
//! so without this bridge a plugin's log lines would go nowhere.

use std::fmt::{self, Write as _};

use tracing_core::{
    field::{Field, Visit},
    span, Event, Level, LevelFilter, Metadata, Subscriber,
};

use crate::host::{Host, LogLevel};

struct HostSubscriber {
    host: &'static Host,
    max: LevelFilter,
}

fn level_of(level: &Level) -> LogLevel {
    match *level {
        Level::ERROR => LogLevel::Error,
        Level::WARN => LogLevel::Warn,
        Level::INFO => LogLevel::Info,
        Level::DEBUG => LogLevel::Debug,
        _ => LogLevel::Trace,
    }
}

fn filter_of(level: LogLevel) -> LevelFilter {
    match level {
        LogLevel::Off => LevelFilter::OFF,
        LogLevel::Error => LevelFilter::ERROR,
        LogLevel::Warn => LevelFilter::WARN,
        LogLevel::Info => LevelFilter::INFO,
        LogLevel::Debug => LevelFilter::DEBUG,
        LogLevel::Trace => LevelFilter::TRACE,
    }
}

/// Collects an event's fields into one line: the message first, then
/// `key=value` pairs.
#[derive(Default)]
struct LineWriter {
    message: String,
    fields: String,
}

impl Visit for LineWriter {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={:?}", field.name(), value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={:?}", field.name(), value);
        }
    }
}

impl Subscriber for HostSubscriber {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= &self.max
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(self.max)
    }

    fn new_span(&self, _span: &span::Attributes<'_>) -> span::Id {
        // Spans are not forwarded; every span shares one id.
        span::Id::from_u64(1)
    }

    fn record(&self, _span: &span::Id, _values: &span::Record<'_>) {}

    fn record_follows_from(&self, _span: &span::Id, _follows: &span::Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut line = LineWriter::default();
        event.record(&mut line);
        line.message.push_str(&line.fields);
        let metadata = event.metadata();
        self.host
            .log(level_of(metadata.level()), metadata.target(), &line.message);
    }

    fn enter(&self, _span: &span::Id) {}

    fn exit(&self, _span: &span::Id) {}
}

/// Installs the bridge for this library. Called once, from the plugin's init.
pub(crate) fn install(host: &'static Host, plugin_name: &'static str) {
    let max = filter_of(host.max_log_level());
    // Fails only when this library already installed a subscriber (a plugin
    // that set its own): then the plugin's choice stands.
    let _ = tracing::subscriber::set_global_default(HostSubscriber { host, max });
    std::panic::set_hook(Box::new(move |info| {
        host.log(
            LogLevel::Error,
            plugin_name,
            &format!("plugin {plugin_name} panicked: {info}"),
        );
    }));
}
