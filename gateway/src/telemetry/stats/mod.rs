//! `telemetry/metrics`, KrakenD's own stats as krakend-metrics keeps them:
//! a go-metrics registry of the router's answers, the endpoints' `pipe`
//! layer and each backend call, served as JSON at `/__stats` on a listener
//! of its own.

pub mod registry;
pub mod sample;
pub mod settings;
