//! Writes plugins' log lines into the gateway's `tracing` log with the
//! plugin's name as the target, so `RUST_LOG=my-plugin=debug` works as it
//! does for the gateway's own modules. `tracing` wants a static callsite per
//! target and level; a plugin's name is only known at load time, so each
//! loaded plugin gets leaked callsites (plugins are never unloaded either).

use std::sync::OnceLock;

use sepia_plugin_api::LogLevel;
use tracing_core::{
    callsite::{self, Callsite},
    field::{FieldSet, Value},
    metadata::Kind,
    Event, Interest, Level, LevelFilter, Metadata,
};

const FIELDS: &[&str] = &["message", "origin"];

struct FallbackCallsite;

impl Callsite for FallbackCallsite {
    fn set_interest(&self, _: Interest) {}
    fn metadata(&self) -> &Metadata<'_> {
        &FALLBACK_METADATA
    }
}

static FALLBACK_CALLSITE: FallbackCallsite = FallbackCallsite;
static FALLBACK_METADATA: Metadata<'static> = Metadata::new(
    "plugin log",
    "plugin",
    Level::INFO,
    None,
    None,
    None,
    FieldSet::new(FIELDS, callsite::Identifier(&FALLBACK_CALLSITE)),
    Kind::EVENT,
);

struct PluginCallsite {
    metadata: OnceLock<Metadata<'static>>,
}

impl Callsite for PluginCallsite {
    fn set_interest(&self, _: Interest) {}
    fn metadata(&self) -> &Metadata<'_> {
        // Set right after the callsite is created, before it is registered.
        self.metadata.get().unwrap_or(&FALLBACK_METADATA)
    }
}

/// The log callsites of one plugin, one per level.
pub struct PluginLog {
    callsites: [&'static PluginCallsite; 5],
}

impl PluginLog {
    /// Callsites whose target is `plugin_name`.
    pub fn new(plugin_name: &str) -> Self {
        let target: &'static str = Box::leak(plugin_name.to_owned().into_boxed_str());
        let make = |level: Level| -> &'static PluginCallsite {
            let site: &'static PluginCallsite = Box::leak(Box::new(PluginCallsite {
                metadata: OnceLock::new(),
            }));
            let _ = site.metadata.set(Metadata::new(
                "plugin log",
                target,
                level,
                None,
                None,
                None,
                FieldSet::new(FIELDS, callsite::Identifier(site)),
                Kind::EVENT,
            ));
            callsite::register(site);
            site
        };
        Self {
            callsites: [
                make(Level::ERROR),
                make(Level::WARN),
                make(Level::INFO),
                make(Level::DEBUG),
                make(Level::TRACE),
            ],
        }
    }

    /// Writes one line. `origin` is the module inside the plugin that logged.
    pub fn emit(&self, level: LogLevel, origin: &str, message: &str) {
        let site = match level {
            LogLevel::Off => return,
            LogLevel::Error => self.callsites[0],
            LogLevel::Warn => self.callsites[1],
            LogLevel::Info => self.callsites[2],
            LogLevel::Debug => self.callsites[3],
            LogLevel::Trace => self.callsites[4],
        };
        let metadata = site.metadata();
        tracing::dispatcher::get_default(|dispatch| {
            if !dispatch.enabled(metadata) {
                return;
            }
            let fields = metadata.fields();
            let (Some(message_field), Some(origin_field)) =
                (fields.field("message"), fields.field("origin"))
            else {
                return;
            };
            let values: [(&tracing_core::field::Field, Option<&dyn Value>); 2] = [
                (&message_field, Some(&message as &dyn Value)),
                (&origin_field, Some(&origin as &dyn Value)),
            ];
            let value_set = fields.value_set(&values);
            dispatch.event(&Event::new(metadata, &value_set));
        });
    }
}

/// The most verbose level the gateway's subscriber lets through.
pub fn host_max_level() -> LogLevel {
    match LevelFilter::current() {
        LevelFilter::OFF => LogLevel::Off,
        LevelFilter::ERROR => LogLevel::Error,
        LevelFilter::WARN => LogLevel::Warn,
        LevelFilter::INFO => LogLevel::Info,
        LevelFilter::DEBUG => LogLevel::Debug,
        _ => LogLevel::Trace,
    }
}
