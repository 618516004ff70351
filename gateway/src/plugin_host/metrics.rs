//! The metrics plugins register through the host: kept here, one registry a
//! gateway process, and read back as snapshots by whatever exports the
//! gateway's own metrics. Recording is a lock on one metric's series map
//! and an update of one series: cheap enough for every request.

use std::{
    collections::HashMap,
    hash::{BuildHasher, Hash, Hasher, RandomState},
    sync::{Mutex, RwLock},
};

use sepia_plugin_api::{MetricId, MetricKind, MetricSpec};

/// Histogram buckets when a plugin names none: Prometheus's defaults,
/// seconds.
const DEFAULT_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Why a metric was not registered.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MetricError {
    /// The name is not a valid metric name.
    #[error("\"{0}\" is not a valid metric name: use letters, digits, '_' and ':', not starting with a digit")]
    InvalidName(String),
    /// A label name is not valid.
    #[error("metric {metric}: \"{label}\" is not a valid label name: use letters, digits and '_', not starting with a digit or \"__\"")]
    InvalidLabel {
        /// The metric.
        metric: String,
        /// The label.
        label: String,
    },
    /// Histogram buckets not in increasing order.
    #[error("metric {0}: histogram buckets must be finite and in increasing order")]
    InvalidBuckets(String),
    /// The name is taken by a metric of another shape.
    #[error("metric {name} is already registered as a {existing} with labels {labels:?}: choose another name")]
    Conflict {
        /// The metric.
        name: String,
        /// The kind it has.
        existing: &'static str,
        /// The labels it has.
        labels: Vec<String>,
    },
}

/// One series' value.
#[derive(Debug, Clone, PartialEq)]
pub enum SeriesValue {
    /// A counter's total or a gauge's level.
    Number(f64),
    /// A histogram: cumulative count per bucket bound, then count and sum.
    Histogram {
        /// `(upper bound, observations at or under it)`.
        buckets: Vec<(f64, u64)>,
        /// All observations.
        count: u64,
        /// Their sum.
        sum: f64,
    },
}

/// A metric as an exporter reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricSnapshot {
    /// The metric's name.
    pub name: String,
    /// What it measures.
    pub help: String,
    /// Counter, gauge or histogram.
    pub kind: MetricKind,
    /// The label names.
    pub label_names: Vec<String>,
    /// Every series: its label values and value.
    pub series: Vec<(Vec<String>, SeriesValue)>,
}

/// A metric's series, by the hash of their label values, so that a record
/// finds its series from borrowed labels without allocating.
type SeriesMap = HashMap<u64, Vec<(Vec<String>, SeriesValue)>>;

struct Metric {
    name: String,
    help: String,
    kind: MetricKind,
    label_names: Vec<String>,
    buckets: Vec<f64>,
    hasher: RandomState,
    series: Mutex<SeriesMap>,
}

impl Metric {
    fn hash_labels(&self, labels: &[&str]) -> u64 {
        let mut hasher = self.hasher.build_hasher();
        for label in labels {
            label.hash(&mut hasher);
        }
        hasher.finish()
    }

    fn record(&self, labels: &[&str], value: f64) {
        let hash = self.hash_labels(labels);
        let mut series = match self.series.lock() {
            Ok(series) => series,
            Err(poisoned) => poisoned.into_inner(),
        };
        let same_hash = series.entry(hash).or_default();
        let position = same_hash
            .iter()
            .position(|(key, _)| key.iter().map(String::as_str).eq(labels.iter().copied()));
        let position = match position {
            Some(position) => position,
            None => {
                let key = labels.iter().map(|l| (*l).to_owned()).collect();
                same_hash.push((key, self.empty_value()));
                same_hash.len() - 1
            }
        };
        let slot = &mut same_hash[position].1;
        match (self.kind, slot) {
            (MetricKind::Counter, SeriesValue::Number(total)) => *total += value,
            (MetricKind::Gauge, SeriesValue::Number(level)) => *level = value,
            (
                MetricKind::Histogram,
                SeriesValue::Histogram {
                    buckets,
                    count,
                    sum,
                },
            ) => {
                for (bound, seen) in buckets.iter_mut() {
                    if value <= *bound {
                        *seen += 1;
                    }
                }
                *count += 1;
                *sum += value;
            }
            _ => {}
        }
    }

    fn empty_value(&self) -> SeriesValue {
        match self.kind {
            MetricKind::Histogram => SeriesValue::Histogram {
                buckets: self.buckets.iter().map(|b| (*b, 0)).collect(),
                count: 0,
                sum: 0.0,
            },
            MetricKind::Counter | MetricKind::Gauge => SeriesValue::Number(0.0),
        }
    }
}

fn kind_name(kind: MetricKind) -> &'static str {
    match kind {
        MetricKind::Counter => "counter",
        MetricKind::Gauge => "gauge",
        MetricKind::Histogram => "histogram",
    }
}

fn valid_name(name: &str, colon: bool) -> bool {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || (colon && c == ':'));
    first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || (colon && c == ':'))
}

/// Every metric plugins registered in this process.
#[derive(Default)]
pub struct MetricsRegistry {
    metrics: RwLock<Vec<Metric>>,
}

impl MetricsRegistry {
    /// Registers `spec`, or finds the same metric registered before.
    pub fn register(&self, spec: &MetricSpec) -> Result<MetricId, MetricError> {
        let name = spec.name.as_str();
        if !valid_name(name, true) {
            return Err(MetricError::InvalidName(name.to_owned()));
        }
        let label_names: Vec<String> = spec.label_names.iter().map(|l| l.to_string()).collect();
        if let Some(label) = label_names
            .iter()
            .find(|l| !valid_name(l, false) || l.starts_with("__"))
        {
            return Err(MetricError::InvalidLabel {
                metric: name.to_owned(),
                label: label.clone(),
            });
        }
        let buckets = if spec.buckets.is_empty() {
            DEFAULT_BUCKETS.to_vec()
        } else {
            spec.buckets.to_vec()
        };
        if buckets.iter().any(|b| !b.is_finite()) || buckets.windows(2).any(|w| w[0] >= w[1]) {
            return Err(MetricError::InvalidBuckets(name.to_owned()));
        }
        let mut metrics = match self.metrics.write() {
            Ok(metrics) => metrics,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(index) = metrics.iter().position(|m| m.name == name) {
            let existing = &metrics[index];
            if existing.kind == spec.kind && existing.label_names == label_names {
                return Ok(MetricId(index as u64));
            }
            return Err(MetricError::Conflict {
                name: name.to_owned(),
                existing: kind_name(existing.kind),
                labels: existing.label_names.clone(),
            });
        }
        metrics.push(Metric {
            name: name.to_owned(),
            help: spec.help.to_string(),
            kind: spec.kind,
            label_names,
            buckets,
            hasher: RandomState::new(),
            series: Mutex::default(),
        });
        Ok(MetricId(metrics.len() as u64 - 1))
    }

    /// Records a value; `false` when the metric is unknown or the number of
    /// labels is wrong (nothing is recorded then).
    pub fn record(&self, id: MetricId, labels: &[&str], value: f64) -> bool {
        let metrics = match self.metrics.read() {
            Ok(metrics) => metrics,
            Err(poisoned) => poisoned.into_inner(),
        };
        let Some(metric) = usize::try_from(id.0).ok().and_then(|i| metrics.get(i)) else {
            return false;
        };
        if metric.label_names.len() != labels.len() {
            return false;
        }
        metric.record(labels, value);
        true
    }

    /// Every metric and series as it stands, series sorted by labels.
    pub fn snapshot(&self) -> Vec<MetricSnapshot> {
        let metrics = match self.metrics.read() {
            Ok(metrics) => metrics,
            Err(poisoned) => poisoned.into_inner(),
        };
        metrics
            .iter()
            .map(|metric| {
                let mut series: Vec<(Vec<String>, SeriesValue)> = match metric.series.lock() {
                    Ok(series) => series.values().flatten().cloned().collect(),
                    Err(poisoned) => poisoned.into_inner().values().flatten().cloned().collect(),
                };
                series.sort_by(|a, b| a.0.cmp(&b.0));
                MetricSnapshot {
                    name: metric.name.clone(),
                    help: metric.help.clone(),
                    kind: metric.kind,
                    label_names: metric.label_names.clone(),
                    series,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(kind: MetricKind, name: &str, labels: &[&str]) -> MetricSpec {
        MetricSpec::new(kind, name, "what it counts").with_labels(labels)
    }

    #[test]
    fn counters_gauges_and_histograms_record_by_labels() {
        let registry = MetricsRegistry::default();
        let hits = registry
            .register(&spec(MetricKind::Counter, "hits_total", &["endpoint"]))
            .unwrap();
        let level = registry
            .register(&spec(MetricKind::Gauge, "level", &[]))
            .unwrap();
        let latency = registry
            .register(
                &spec(MetricKind::Histogram, "latency_seconds", &[]).with_buckets(&[0.1, 1.0]),
            )
            .unwrap();
        assert!(registry.record(hits, &["/a"], 1.0));
        assert!(registry.record(hits, &["/a"], 2.0));
        assert!(registry.record(hits, &["/b"], 1.0));
        assert!(registry.record(level, &[], 7.0));
        assert!(registry.record(level, &[], 3.0));
        assert!(registry.record(latency, &[], 0.05));
        assert!(registry.record(latency, &[], 0.5));
        assert!(!registry.record(hits, &[], 1.0), "wrong label count");
        assert!(!registry.record(MetricId(99), &[], 1.0));
        let snapshot = registry.snapshot();
        assert_eq!(
            snapshot[0].series,
            vec![
                (vec!["/a".to_owned()], SeriesValue::Number(3.0)),
                (vec!["/b".to_owned()], SeriesValue::Number(1.0)),
            ]
        );
        assert_eq!(snapshot[1].series[0].1, SeriesValue::Number(3.0));
        assert_eq!(
            snapshot[2].series[0].1,
            SeriesValue::Histogram {
                buckets: vec![(0.1, 1), (1.0, 2)],
                count: 2,
                sum: 0.55
            }
        );
    }

    #[test]
    fn registering_again_finds_the_same_metric_or_explains_the_clash() {
        let registry = MetricsRegistry::default();
        let first = registry
            .register(&spec(MetricKind::Counter, "x_total", &["a"]))
            .unwrap();
        let again = registry
            .register(&spec(MetricKind::Counter, "x_total", &["a"]))
            .unwrap();
        assert_eq!(first, again);
        let clash = registry
            .register(&spec(MetricKind::Gauge, "x_total", &["a"]))
            .unwrap_err();
        assert!(clash
            .to_string()
            .contains("already registered as a counter"));
        assert!(matches!(
            registry.register(&spec(MetricKind::Counter, "1bad", &[])),
            Err(MetricError::InvalidName(_))
        ));
        assert!(matches!(
            registry.register(&spec(MetricKind::Counter, "ok", &["__x"])),
            Err(MetricError::InvalidLabel { .. })
        ));
        assert!(matches!(
            registry.register(&spec(MetricKind::Histogram, "h", &[]).with_buckets(&[1.0, 0.5])),
            Err(MetricError::InvalidBuckets(_))
        ));
    }
}
