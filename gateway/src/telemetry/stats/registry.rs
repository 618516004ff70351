//! krakend-metrics' registry (go-metrics, prefixed `krakend.`): counters,
//! gauges and histograms by name, each endpoint's and backend's registered
//! when it is built, so that `/__stats` lists them from the start; and the
//! page itself, as go-metrics' expvar handler writes it.

use std::{
    collections::BTreeMap,
    sync::{
        atomic::{AtomicI64, Ordering},
        Arc, Mutex, OnceLock,
    },
    time::Duration,
};

use super::sample::Histogram;

/// A backend's URL pattern as lura keeps it, the name krakend-metrics
/// gives its layer: `{id}` written `{{.Id}}`.
pub fn lura_url_pattern(pattern: &str) -> String {
    crate::telemetry::map_params(pattern, |out, name| {
        out.push_str("{{.");
        out.push_str(&sepia_plugin_api::lura_param_name(name));
        out.push_str("}}");
    })
}

/// One metric of the registry.
#[derive(Clone)]
enum Metric {
    Counter(Arc<AtomicI64>),
    Gauge(Arc<AtomicI64>),
    Histogram(Arc<Histogram>),
}

/// The process's registry: kept across reloads, as go-metrics' is for the
/// life of the process.
#[derive(Default)]
pub struct Registry {
    metrics: Mutex<BTreeMap<String, Metric>>,
}

static REGISTRY: OnceLock<Registry> = OnceLock::new();

/// The registry (made on first use).
pub fn registry() -> &'static Registry {
    REGISTRY.get_or_init(Registry::default)
}

impl Registry {
    /// The metric named `name`, registered by `make` when new; a name
    /// taken by a metric of another kind gives a detached one (never
    /// listed), as go-metrics' `GetOrRegister` panics there instead.
    fn entry<T: Default>(
        &self,
        name: String,
        make: impl FnOnce() -> Metric,
        pick: impl Fn(&Metric) -> Option<&Arc<T>>,
    ) -> Arc<T> {
        let Ok(mut metrics) = self.metrics.lock() else {
            return Arc::default();
        };
        pick(metrics.entry(name).or_insert_with(make))
            .cloned()
            .unwrap_or_default()
    }

    fn counter(&self, name: String) -> Arc<AtomicI64> {
        self.entry(
            name,
            || Metric::Counter(Arc::default()),
            |m| match m {
                Metric::Counter(c) => Some(c),
                _ => None,
            },
        )
    }

    fn gauge(&self, name: String) -> Arc<AtomicI64> {
        self.entry(
            name,
            || Metric::Gauge(Arc::default()),
            |m| match m {
                Metric::Gauge(g) => Some(g),
                _ => None,
            },
        )
    }

    fn histogram(&self, name: String) -> Arc<Histogram> {
        self.entry(
            name,
            || Metric::Histogram(Arc::default()),
            |m| match m {
                Metric::Histogram(h) => Some(h),
                _ => None,
            },
        )
    }

    /// An endpoint's router metrics: `krakend.router.response.ENDPOINT.*`
    /// (`endpoint` as gin routes it, `/items/:id`).
    pub fn endpoint(&'static self, endpoint: &str) -> EndpointStats {
        let prefix = format!("krakend.router.response.{endpoint}");
        // krakend-metrics registers this one and never counts it.
        let _ = self.counter(format!("{prefix}.status"));
        EndpointStats {
            registry: self,
            size: self.histogram(format!("{prefix}.size")),
            time: self.histogram(format!("{prefix}.time")),
            statuses: Mutex::default(),
            prefix,
            router: RouterStats::of(self),
        }
    }

    /// A proxy middleware's metrics, `krakend.proxy.requests.layer.LAYER.
    /// name.NAME.complete.B.error.B` and the same `latency`, all four
    /// outcomes registered now.
    pub fn layer(&self, layer: &str, name: &str) -> LayerStats {
        let labels = format!("layer.{layer}.name.{name}");
        let outcome = |complete: bool, error: bool| {
            let labels = format!("{labels}.complete.{complete}.error.{error}");
            (
                self.counter(format!("krakend.proxy.requests.{labels}")),
                self.histogram(format!("krakend.proxy.latency.{labels}")),
            )
        };
        LayerStats {
            outcomes: [
                outcome(false, false),
                outcome(false, true),
                outcome(true, false),
                outcome(true, true),
            ],
        }
    }

    /// krakend-metrics' collection: the router's connection counts become
    /// gauges and totals, and every histogram is cleared.
    pub fn collect(&self) {
        let router = RouterStats::of(self);
        for (count, gauge, total) in [
            (
                &router.connected,
                &router.connected_gauge,
                &router.connected_total,
            ),
            (
                &router.disconnected,
                &router.disconnected_gauge,
                &router.disconnected_total,
            ),
        ] {
            let n = count.swap(0, Ordering::Relaxed);
            gauge.store(n, Ordering::Relaxed);
            total.fetch_add(n, Ordering::Relaxed);
        }
        let Ok(metrics) = self.metrics.lock() else {
            return;
        };
        for metric in metrics.values() {
            if let Metric::Histogram(histogram) = metric {
                histogram.clear();
            }
        }
    }

    /// `/__stats`: every metric, histograms spread into go-metrics' ten
    /// values, and `cmdline`, sorted by name, as Go's expvar writes them.
    pub fn page(&self) -> Vec<u8> {
        let mut entries: Vec<(String, String)> = Vec::new();
        let arguments: Vec<String> = std::env::args().collect();
        entries.push(("cmdline".into(), serde_json::json!(arguments).to_string()));
        if let Ok(metrics) = self.metrics.lock() {
            for (name, metric) in metrics.iter() {
                match metric {
                    Metric::Counter(value) | Metric::Gauge(value) => {
                        entries.push((name.clone(), value.load(Ordering::Relaxed).to_string()));
                    }
                    Metric::Histogram(histogram) => {
                        let s = histogram.snapshot();
                        let float = |suffix: &str, value: f64| {
                            (format!("{name}.{suffix}"), sepia_json::go_float_g(value))
                        };
                        entries.push((format!("{name}.count"), s.count.to_string()));
                        entries.push(float("min", s.min as f64));
                        entries.push(float("max", s.max as f64));
                        entries.push(float("mean", s.mean));
                        entries.push(float("std-dev", s.std_dev));
                        for (suffix, value) in
                            ["50", "75", "95", "99", "999"].iter().zip(s.percentiles)
                        {
                            entries.push(float(&format!("{suffix}-percentile"), value));
                        }
                    }
                }
            }
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out = String::from("{\n");
        for (i, (key, value)) in entries.iter().enumerate() {
            if i > 0 {
                out.push_str(",\n");
            }
            out.push_str(&serde_json::Value::from(key.as_str()).to_string());
            out.push_str(": ");
            out.push_str(value);
        }
        out.push_str("\n}\n");
        out.into_bytes()
    }
}

/// The router's connection counts (`krakend.router.connected`, ...).
struct RouterStats {
    connected: Arc<AtomicI64>,
    disconnected: Arc<AtomicI64>,
    connected_total: Arc<AtomicI64>,
    disconnected_total: Arc<AtomicI64>,
    connected_gauge: Arc<AtomicI64>,
    disconnected_gauge: Arc<AtomicI64>,
}

impl RouterStats {
    fn of(registry: &Registry) -> Self {
        let name = |n: &str| format!("krakend.router.{n}");
        Self {
            connected: registry.counter(name("connected")),
            disconnected: registry.counter(name("disconnected")),
            connected_total: registry.counter(name("connected-total")),
            disconnected_total: registry.counter(name("disconnected-total")),
            connected_gauge: registry.gauge(name("connected-gauge")),
            disconnected_gauge: registry.gauge(name("disconnected-gauge")),
        }
    }
}

/// One endpoint's router metrics.
pub struct EndpointStats {
    registry: &'static Registry,
    prefix: String,
    size: Arc<Histogram>,
    time: Arc<Histogram>,
    /// `.status.CODE.count`, made as statuses are seen.
    statuses: Mutex<BTreeMap<u16, Arc<AtomicI64>>>,
    router: RouterStats,
}

impl EndpointStats {
    /// A request reached the endpoint (krakend-metrics counts a
    /// "connection" per request).
    pub fn begin(&self) {
        self.router.connected.fetch_add(1, Ordering::Relaxed);
    }

    /// Its answer: status, body size, time taken.
    pub fn end(&self, status: u16, size: i64, elapsed: Duration) {
        let counter = match self.statuses.lock() {
            Ok(mut statuses) => statuses
                .entry(status)
                .or_insert_with(|| {
                    self.registry
                        .counter(format!("{}.status.{status}.count", self.prefix))
                })
                .clone(),
            Err(_) => return,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.size.update(size);
        self.time
            .update(i64::try_from(elapsed.as_nanos()).unwrap_or(i64::MAX));
        self.router.disconnected.fetch_add(1, Ordering::Relaxed);
    }
}

/// One proxy middleware's metrics.
pub struct LayerStats {
    /// By (complete, error): (false, false), (false, true), (true, false),
    /// (true, true).
    outcomes: [(Arc<AtomicI64>, Arc<Histogram>); 4],
}

impl LayerStats {
    /// One call through the layer.
    pub fn record(&self, complete: bool, error: bool, elapsed: Duration) {
        let (count, latency) = &self.outcomes[usize::from(complete) * 2 + usize::from(error)];
        count.fetch_add(1, Ordering::Relaxed);
        latency.update(i64::try_from(elapsed.as_nanos()).unwrap_or(i64::MAX));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_is_go_metrics_expvar_json() {
        let registry: &'static Registry = Box::leak(Box::default());
        let endpoint = registry.endpoint("/items/:id");
        endpoint.begin();
        endpoint.end(200, 7, Duration::from_nanos(1_500_000));
        registry
            .layer("backend", "/stock/{{.Id}}")
            .record(true, false, Duration::from_nanos(1000));
        let page = String::from_utf8(registry.page()).unwrap();
        assert!(page.starts_with("{\n\"cmdline\": ["), "{page}");
        assert!(page.ends_with("\n}\n"), "{page}");
        let parsed: serde_json::Value = serde_json::from_str(&page).unwrap();
        assert_eq!(
            parsed["krakend.router.response./items/:id.status.200.count"],
            1
        );
        assert_eq!(parsed["krakend.router.response./items/:id.status"], 0);
        assert_eq!(parsed["krakend.router.response./items/:id.size.count"], 1);
        assert_eq!(parsed["krakend.router.response./items/:id.size.max"], 7.0);
        assert!(
            page.contains("\"krakend.router.response./items/:id.time.mean\": 1.5e+06"),
            "{page}"
        );
        assert_eq!(
            parsed["krakend.proxy.requests.layer.backend.name./stock/{{.Id}}.complete.true.error.false"],
            1
        );
        assert_eq!(
            parsed["krakend.proxy.requests.layer.backend.name./stock/{{.Id}}.complete.false.error.true"],
            0
        );
        assert_eq!(parsed["krakend.router.connected"], 1);
        assert_eq!(lura_url_pattern("/stock/{id}/{b}"), "/stock/{{.Id}}/{{.B}}");
        registry.collect();
        let parsed: serde_json::Value = serde_json::from_slice(&registry.page()).unwrap();
        assert_eq!(parsed["krakend.router.connected"], 0);
        assert_eq!(parsed["krakend.router.connected-gauge"], 1);
        assert_eq!(parsed["krakend.router.connected-total"], 1);
        assert_eq!(parsed["krakend.router.disconnected-total"], 1);
        // Histograms are cleared at each collection; counters are not.
        assert_eq!(parsed["krakend.router.response./items/:id.size.count"], 0);
        assert_eq!(
            parsed["krakend.router.response./items/:id.status.200.count"],
            1
        );
        let page = String::from_utf8(registry.page()).unwrap();
        let keys: Vec<&str> = page
            .lines()
            .filter_map(|l| l.split("\": ").next()?.strip_prefix('"'))
            .collect();
        let mut sorted = keys.clone();
        sorted.sort_unstable();
        assert!(keys.len() > 20);
        assert_eq!(keys, sorted);
    }
}
