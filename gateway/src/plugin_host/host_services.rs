//! The gateway's side of [`AbiHost`]: what each plugin gets through the ABI.

#![allow(non_local_definitions)]

use abi_stable::std_types::{RResult, RStr};
use sepia_plugin_api::{AbiHost, FetchRequest, FetchResponse, LogLevel, PluginError};

use super::{fetch::Fetcher, log_bridge::PluginLog};

/// Host services of one plugin (its log lines carry its name).
pub struct GatewayHost {
    log: PluginLog,
    max_level: LogLevel,
    fetcher: Fetcher,
}

impl GatewayHost {
    /// The services for the plugin called `plugin_name`.
    pub fn new(plugin_name: &str, max_level: LogLevel, fetcher: Fetcher) -> Self {
        GatewayHost {
            log: PluginLog::new(plugin_name),
            max_level,
            fetcher,
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
        self.fetcher.fetch_blocking(request).into()
    }
}
