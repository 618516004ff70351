//! The gateway's side of [`AbiHost`]: what each plugin gets through the ABI.

#![allow(non_local_definitions)]

use std::sync::Arc;

use abi_stable::std_types::{RErr, ROk, ROption, RResult, RSlice, RStr};
use sepia_plugin_api::{
    AbiHost, FetchRequest, FetchResponse, LogLevel, MetricId, MetricSpec, PluginError,
};

use super::{
    fetch::Fetcher, log_bridge::PluginLog, metrics::MetricsRegistry, shared_state::SharedState,
};

/// What every plugin of one gateway shares: the fetch client, the metrics
/// registry, the shared values, whether the gateway only checks, and the
/// configuration's generation.
#[derive(Clone)]
pub struct HostServices {
    /// Performs plugins' HTTP requests.
    pub fetcher: Fetcher,
    /// `sepia check`: verify only, serve nothing.
    pub checking: bool,
    /// The configuration's `version`.
    pub config_version: u64,
    /// The plugins' metrics.
    pub metrics: Arc<MetricsRegistry>,
    /// Values shared by all workers.
    pub shared: Arc<SharedState>,
}

impl HostServices {
    /// Services with an empty registry and no shared values yet.
    pub fn new(fetcher: Fetcher, checking: bool, config_version: u64) -> Self {
        Self {
            fetcher,
            checking,
            config_version,
            metrics: Arc::default(),
            shared: Arc::default(),
        }
    }
}

/// Host services of one plugin (its log lines carry its name).
pub struct GatewayHost {
    log: PluginLog,
    max_level: LogLevel,
    services: HostServices,
}

impl GatewayHost {
    /// The services for the plugin called `plugin_name`.
    pub fn new(plugin_name: &str, max_level: LogLevel, services: HostServices) -> Self {
        GatewayHost {
            log: PluginLog::new(plugin_name),
            max_level,
            services,
        }
    }
}

impl AbiHost for GatewayHost {
    fn max_log_level(&self) -> LogLevel {
        self.max_level
    }

    fn log(&self, level: LogLevel, target: RStr<'_>, message: RStr<'_>) {
        self.log.emit(level, target.as_str(), message.as_str());
    }

    fn fetch(&self, request: FetchRequest) -> RResult<FetchResponse, PluginError> {
        self.services.fetcher.fetch_blocking(request).into()
    }

    fn checking(&self) -> bool {
        self.services.checking
    }

    fn config_version(&self) -> u64 {
        self.services.config_version
    }

    fn register_metric(&self, spec: MetricSpec) -> RResult<MetricId, PluginError> {
        match self.services.metrics.register(&spec) {
            Ok(id) => ROk(id),
            Err(error) => RErr(PluginError::config(error.to_string())),
        }
    }

    fn record_metric(&self, metric: MetricId, labels: RSlice<'_, RStr<'_>>, value: f64) {
        const INLINE: usize = 8;
        let recorded = if labels.len() <= INLINE {
            let mut buffer = [""; INLINE];
            for (slot, label) in buffer.iter_mut().zip(labels.iter()) {
                *slot = label.as_str();
            }
            self.services
                .metrics
                .record(metric, &buffer[..labels.len()], value)
        } else {
            let labels: Vec<&str> = labels.iter().map(|l| l.as_str()).collect();
            self.services.metrics.record(metric, &labels, value)
        };
        if !recorded {
            self.log.emit(
                LogLevel::Warn,
                "metrics",
                &format!(
                    "a value of metric {} with {} label values was dropped: the metric is unknown or has another number of labels",
                    metric.0,
                    labels.len()
                ),
            );
        }
    }

    fn shared_add(&self, key: RStr<'_>, delta: i64, ttl_ms: u64) -> i64 {
        self.services.shared.add(key.as_str(), delta, ttl_ms)
    }

    fn shared_compare_and_swap(
        &self,
        key: RStr<'_>,
        expected: ROption<i64>,
        new: i64,
        ttl_ms: u64,
    ) -> ROption<i64> {
        self.services
            .shared
            .compare_and_swap(key.as_str(), expected.into(), new, ttl_ms)
            .into()
    }
}
