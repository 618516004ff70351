//! The two token buckets KrakenD has used, each as its generation counts
//! tokens, since what a client sees at the edge of a limit depends on it.

use std::time::{Duration, Instant};

/// A token bucket, as one KrakenD generation fills it.
#[derive(Debug, Clone)]
pub enum TokenBucket {
    Krakend2(Krakend2Bucket),
    Juju(JujuBucket),
}

impl TokenBucket {
    /// Takes one token when there is one.
    pub fn allow(&mut self, now: Instant) -> bool {
        match self {
            TokenBucket::Krakend2(bucket) => bucket.allow(now),
            TokenBucket::Juju(bucket) => bucket.allow(now),
        }
    }
}

/// krakend-ratelimit v3's bucket (KrakenD 2.x): it starts full, and is
/// refilled only once empty, by the whole intervals since the last refill.
#[derive(Debug, Clone)]
pub struct Krakend2Bucket {
    fill_interval: Duration,
    capacity: u64,
    tokens: u64,
    last_refill: Instant,
}

impl Krakend2Bucket {
    /// `rate` tokens a second, at most `capacity` held.
    pub fn new(rate: f64, capacity: u64, now: Instant) -> Self {
        let rate = rate.max(1e-9);
        // Go's time.Duration(int64(1e9 / rate)); a zero interval would
        // divide by zero there, so it is at least a nanosecond here.
        let nanos = (1e9 / rate).min(u64::MAX as f64) as u64;
        Self {
            fill_interval: Duration::from_nanos(nanos.max(1)),
            capacity: capacity.max(1),
            tokens: capacity.max(1),
            last_refill: now,
        }
    }

    fn allow(&mut self, now: Instant) -> bool {
        if self.tokens > 0 {
            self.tokens -= 1;
            return true;
        }
        let elapsed = now.saturating_duration_since(self.last_refill).as_nanos();
        let interval = self.fill_interval.as_nanos();
        let to_add = elapsed / interval;
        if to_add == 0 {
            return false;
        }
        let advance = u64::try_from(to_add.saturating_mul(interval)).unwrap_or(u64::MAX);
        self.last_refill += Duration::from_nanos(advance);
        let to_add = u64::try_from(to_add).unwrap_or(u64::MAX);
        if self.tokens.saturating_add(to_add) > self.capacity {
            // As krakend-ratelimit does: the refill that overflows the
            // bucket leaves it full and lets this request through for free.
            self.tokens = self.capacity;
            return true;
        }
        self.tokens += to_add - 1;
        true
    }
}

/// juju/ratelimit's bucket (`NewBucketWithRate`, KrakenD 1.x): it starts
/// full and gains `quantum` tokens every `fill_interval` since it was made,
/// up to its capacity.
#[derive(Debug, Clone)]
pub struct JujuBucket {
    start: Instant,
    fill_interval: Duration,
    quantum: u64,
    capacity: u64,
    available: u64,
    latest_tick: u64,
}

impl JujuBucket {
    /// `rate` tokens a second, at most `capacity` held. juju picks the
    /// smallest quantum whose interval gives the rate within 1%; it panics
    /// where none does, and on a capacity of 0, which callers refuse first.
    pub fn new(rate: f64, capacity: u64, now: Instant) -> Option<Self> {
        // NaN is refused with the rest.
        if capacity == 0 || rate.is_nan() || rate <= 0.0 {
            return None;
        }
        let mut quantum: u64 = 1;
        while quantum < 1 << 50 {
            let nanos = 1e9 * quantum as f64 / rate;
            if nanos >= 1.0 && nanos < u64::MAX as f64 {
                let fill_interval = Duration::from_nanos(nanos as u64);
                let actual = 1e9 * quantum as f64 / fill_interval.as_nanos() as f64;
                if (actual - rate).abs() / rate <= 0.01 {
                    return Some(Self {
                        start: now,
                        fill_interval,
                        quantum,
                        capacity,
                        available: capacity,
                        latest_tick: 0,
                    });
                }
            }
            let next = quantum * 11 / 10;
            quantum = if next == quantum { quantum + 1 } else { next };
        }
        None
    }

    fn allow(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.start).as_nanos();
        let tick = u64::try_from(elapsed / self.fill_interval.as_nanos()).unwrap_or(u64::MAX);
        let last = self.latest_tick;
        self.latest_tick = tick;
        if self.available < self.capacity {
            let gained = (tick - last).saturating_mul(self.quantum);
            self.available = self.available.saturating_add(gained).min(self.capacity);
        }
        if self.available == 0 {
            return false;
        }
        self.available -= 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(bucket: &mut TokenBucket, at: Instant, tries: usize) -> usize {
        (0..tries).filter(|_| bucket.allow(at)).count()
    }

    #[test]
    fn krakend2_starts_full_and_refills_only_once_empty() {
        let t0 = Instant::now();
        let mut b = TokenBucket::Krakend2(Krakend2Bucket::new(10.0, 5, t0));
        assert_eq!(count(&mut b, t0, 20), 5);
        // 0.25 s: two whole intervals of 100 ms; the first request takes
        // one, the bucket keeps the other.
        let t1 = t0 + Duration::from_millis(250);
        assert_eq!(count(&mut b, t1, 20), 2);
        // A long pause overflows the bucket: full again, and that request
        // was free (KrakenD's quirk), so six get through.
        let t2 = t1 + Duration::from_secs(60);
        assert_eq!(count(&mut b, t2, 20), 6);
    }

    #[test]
    fn juju_refills_by_ticks_from_its_start() {
        let t0 = Instant::now();
        let mut b = TokenBucket::Juju(JujuBucket::new(10.0, 5, t0).unwrap());
        assert_eq!(count(&mut b, t0, 20), 5);
        let t1 = t0 + Duration::from_millis(250);
        assert_eq!(count(&mut b, t1, 20), 2);
        // Fractions of a tick are not lost: 250 ms then 50 ms make 3 ticks.
        let t2 = t1 + Duration::from_millis(50);
        assert_eq!(count(&mut b, t2, 20), 1);
        let t3 = t2 + Duration::from_secs(60);
        assert_eq!(count(&mut b, t3, 20), 5);
    }

    #[test]
    fn juju_refuses_what_it_panics_on() {
        let now = Instant::now();
        assert!(JujuBucket::new(10.0, 0, now).is_none());
        assert!(JujuBucket::new(0.0, 1, now).is_none());
        // Slow rates get a long interval, quantum 1.
        let slow = JujuBucket::new(0.5, 1, now).unwrap();
        assert_eq!(slow.fill_interval, Duration::from_secs(2));
        assert_eq!(slow.quantum, 1);
    }
}
