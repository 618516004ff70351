//! `telemetry/logging.syslog`: each application log line also goes to the
//! local syslog, as krakend-gologging sends it: `LEVEL > message`, the
//! prefix as the program's tag, the configured facility, and one severity
//! for every line (that of the configured level).

use std::sync::Mutex;

use arc_swap::ArcSwapOption;
use syslog::{Formatter3164, Logger, LoggerBackend};
use tracing::{Event, Subscriber};
use tracing_subscriber::{layer::Context, Layer};

use super::{
    settings::{LogSettings, SyslogSeverity},
    MessageText,
};

/// Where the socket is: the system's (`/dev/log`...) unless this
/// environment variable names another (a container's, a test's).
pub const SOCKET_VARIABLE: &str = "SEPIA_SYSLOG_SOCKET";

struct Sink {
    logger: Mutex<Logger<LoggerBackend, Formatter3164>>,
    severity: SyslogSeverity,
}

static SINK: ArcSwapOption<Sink> = ArcSwapOption::const_empty();

/// Connects to the syslog socket for `settings`; why not, when it cannot.
pub fn open(settings: &LogSettings) -> Result<(), String> {
    let Some(facility) = settings.syslog else {
        return Ok(());
    };
    let formatter = Formatter3164 {
        facility,
        hostname: None,
        process: if settings.prefix.is_empty() {
            "sepia".to_owned()
        } else {
            settings.prefix.clone()
        },
        pid: std::process::id(),
    };
    let logger = match std::env::var_os(SOCKET_VARIABLE) {
        Some(path) => syslog::unix_custom(formatter, path),
        None => syslog::unix(formatter),
    }
    .map_err(|e| format!("cannot reach the local syslog: {e}"))?;
    SINK.store(Some(std::sync::Arc::new(Sink {
        logger: Mutex::new(logger),
        severity: settings.syslog_severity,
    })));
    Ok(())
}

/// The layer that sends lines to the sink, once one is open.
pub struct SyslogLayer;

impl<S: Subscriber> Layer<S> for SyslogLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let Some(sink) = SINK.load_full() else {
            return;
        };
        let mut text = MessageText::default();
        event.record(&mut text);
        let level = super::go_logging_level(event.metadata().level());
        let line = format!("{level} > {}{}", text.message, text.fields);
        let Ok(mut logger) = sink.logger.lock() else {
            return;
        };
        let _ = match sink.severity {
            SyslogSeverity::Critical => logger.crit(line),
            SyslogSeverity::Error => logger.err(line),
            SyslogSeverity::Warning => logger.warning(line),
            SyslogSeverity::Info => logger.info(line),
            SyslogSeverity::Debug => logger.debug(line),
        };
    }
}
