//! go-metrics' histogram, as krakend-metrics uses it: a uniform sample of
//! at most 1028 values (Vitter's algorithm R), the count of every update,
//! and the statistics of the sample computed as go-metrics computes them.

use std::sync::Mutex;

/// krakend-metrics' `NewUniformSample(1028)`.
const RESERVOIR: usize = 1028;

/// One histogram.
#[derive(Debug, Default)]
pub struct Histogram(Mutex<Reservoir>);

#[derive(Debug, Default)]
struct Reservoir {
    count: i64,
    values: Vec<i64>,
}

/// What go-metrics' expvar export writes of a histogram.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub count: i64,
    pub min: i64,
    pub max: i64,
    pub mean: f64,
    pub std_dev: f64,
    /// The 50th, 75th, 95th, 99th and 99.9th percentiles.
    pub percentiles: [f64; 5],
}

impl Histogram {
    /// Adds a value.
    pub fn update(&self, value: i64) {
        let Ok(mut reservoir) = self.0.lock() else {
            return;
        };
        reservoir.count += 1;
        if reservoir.values.len() < RESERVOIR {
            reservoir.values.push(value);
        } else {
            let slot = fastrand::i64(0..reservoir.count);
            if let Some(kept) = usize::try_from(slot)
                .ok()
                .and_then(|s| reservoir.values.get_mut(s))
            {
                *kept = value;
            }
        }
    }

    /// Forgets every value (krakend-metrics clears its histograms at each
    /// collection).
    pub fn clear(&self) {
        if let Ok(mut reservoir) = self.0.lock() {
            reservoir.count = 0;
            reservoir.values.clear();
        }
    }

    /// The histogram's statistics now.
    pub fn snapshot(&self) -> Snapshot {
        let (count, mut values) = match self.0.lock() {
            Ok(reservoir) => (reservoir.count, reservoir.values.clone()),
            Err(_) => (0, Vec::new()),
        };
        values.sort_unstable();
        Snapshot {
            count,
            min: values.first().copied().unwrap_or(0),
            max: values.last().copied().unwrap_or(0),
            mean: mean(&values),
            std_dev: variance(&values).sqrt(),
            percentiles: [0.5, 0.75, 0.95, 0.99, 0.999].map(|p| percentile(&values, p)),
        }
    }
}

fn mean(values: &[i64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.iter().map(|v| *v as f64).sum::<f64>() / values.len() as f64
}

fn variance(values: &[i64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let m = mean(values);
    values.iter().map(|v| (*v as f64 - m).powi(2)).sum::<f64>() / values.len() as f64
}

/// go-metrics' `SamplePercentiles` of sorted `values`.
fn percentile(values: &[i64], p: f64) -> f64 {
    let size = values.len();
    if size == 0 {
        return 0.0;
    }
    let pos = p * (size + 1) as f64;
    if pos < 1.0 {
        values[0] as f64
    } else if pos >= size as f64 {
        values[size - 1] as f64
    } else {
        // pos is in [1, size): both indexes are in bounds.
        let index = pos as usize;
        let lower = values[index - 1] as f64;
        let upper = values[index] as f64;
        lower + (pos - pos.floor()) * (upper - lower)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics_are_go_metrics_ones() {
        let h = Histogram::default();
        assert_eq!(h.snapshot().count, 0);
        assert_eq!(h.snapshot().percentiles, [0.0; 5]);
        for v in 1..=10 {
            h.update(v);
        }
        let s = h.snapshot();
        assert_eq!((s.count, s.min, s.max), (10, 1, 10));
        assert_eq!(s.mean, 5.5);
        assert!((s.std_dev - 8.25f64.sqrt()).abs() < 1e-12);
        // go-metrics: pos = p * 11; 0.5 -> 5.5 -> 5 + 0.5 * (6 - 5).
        assert_eq!(s.percentiles[0], 5.5);
        assert_eq!(s.percentiles[1], 8.25);
        assert_eq!(s.percentiles[2], 10.0);
        h.clear();
        assert_eq!(h.snapshot().count, 0);
    }

    #[test]
    fn the_reservoir_keeps_1028_values_and_counts_all() {
        let h = Histogram::default();
        for v in 0..5000 {
            h.update(v);
        }
        let s = h.snapshot();
        assert_eq!(s.count, 5000);
        assert_eq!(h.0.lock().unwrap().values.len(), RESERVOIR);
        assert!(s.max < 5000 && s.min >= 0);
    }
}
