//! sony/gobreaker's state machine, as krakend-circuitbreaker configures it:
//! closed until more than `max_errors` calls in a row fail (counts cleared
//! every `interval` while closed, when set); then open for `timeout`, every
//! call refused; then half-open, one trial call let through: its success
//! closes the breaker, its failure opens it again. Results of calls let
//! through in an earlier state (an earlier "generation") are ignored.

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

/// A breaker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Closed,
    HalfOpen,
    Open,
}

impl State {
    /// gobreaker's name for it.
    pub fn name(self) -> &'static str {
        match self {
            State::Closed => "closed",
            State::HalfOpen => "half-open",
            State::Open => "open",
        }
    }
}

/// Why a call was not let through, in gobreaker's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Open,
    /// Half-open, and the trial call is out.
    TooManyRequests,
}

impl Refusal {
    pub fn message(self) -> &'static str {
        match self {
            Refusal::Open => "circuit breaker is open",
            Refusal::TooManyRequests => "too many requests",
        }
    }
}

/// What the breaker is built with.
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerSettings {
    pub name: String,
    /// How often the counts are cleared while closed; zero: never.
    pub interval: Duration,
    /// How long it stays open.
    pub timeout: Duration,
    /// It opens when more calls than this fail in a row.
    pub max_errors: u32,
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    requests: u32,
    consecutive_successes: u32,
    consecutive_failures: u32,
}

#[derive(Debug)]
struct Inner {
    state: State,
    generation: u64,
    counts: Counts,
    expiry: Option<Instant>,
}

/// Hears of a change of state: the breaker's name, from, to.
type OnChange = Box<dyn Fn(&str, State, State) + Send + Sync>;

/// One backend's breaker.
pub struct Breaker {
    settings: BreakerSettings,
    inner: Mutex<Inner>,
    on_change: OnChange,
}

/// gobreaker lets one trial call through while half-open.
const HALF_OPEN_REQUESTS: u32 = 1;

impl Breaker {
    /// A closed breaker; `on_change` hears of every change of state.
    pub fn new(
        settings: BreakerSettings,
        now: Instant,
        on_change: impl Fn(&str, State, State) + Send + Sync + 'static,
    ) -> Self {
        let mut settings = settings;
        if settings.timeout.is_zero() {
            // gobreaker's default.
            settings.timeout = Duration::from_secs(60);
        }
        let mut inner = Inner {
            state: State::Closed,
            generation: 0,
            counts: Counts::default(),
            expiry: None,
        };
        Self::new_generation(&settings, &mut inner, now);
        Self {
            settings,
            inner: Mutex::new(inner),
            on_change: Box::new(on_change),
        }
    }

    /// Lets a call through, with the generation to hand back to
    /// [`Breaker::after`], or refuses it.
    pub fn before(&self, now: Instant) -> Result<u64, Refusal> {
        let mut inner = self.lock();
        let state = self.current_state(&mut inner, now);
        match state {
            State::Open => return Err(Refusal::Open),
            State::HalfOpen if inner.counts.requests >= HALF_OPEN_REQUESTS => {
                return Err(Refusal::TooManyRequests)
            }
            _ => {}
        }
        inner.counts.requests = inner.counts.requests.saturating_add(1);
        Ok(inner.generation)
    }

    /// Counts the result of a call let through in `generation`.
    pub fn after(&self, generation: u64, success: bool, now: Instant) {
        let mut inner = self.lock();
        let state = self.current_state(&mut inner, now);
        if inner.generation != generation {
            return;
        }
        if success {
            inner.counts.consecutive_successes =
                inner.counts.consecutive_successes.saturating_add(1);
            inner.counts.consecutive_failures = 0;
            if state == State::HalfOpen && inner.counts.consecutive_successes >= HALF_OPEN_REQUESTS
            {
                self.set_state(&mut inner, State::Closed, now);
            }
        } else {
            inner.counts.consecutive_failures = inner.counts.consecutive_failures.saturating_add(1);
            inner.counts.consecutive_successes = 0;
            match state {
                State::Closed if inner.counts.consecutive_failures > self.settings.max_errors => {
                    self.set_state(&mut inner, State::Open, now)
                }
                State::HalfOpen => self.set_state(&mut inner, State::Open, now),
                _ => {}
            }
        }
    }

    /// The state now.
    #[cfg(test)]
    pub fn state(&self, now: Instant) -> State {
        let mut inner = self.lock();
        self.current_state(&mut inner, now)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Counters only: a poisoned lock still holds usable ones.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn current_state(&self, inner: &mut Inner, now: Instant) -> State {
        // gobreaker: expired once the expiry is strictly before now.
        let expired = inner.expiry.is_some_and(|at| at < now);
        match inner.state {
            State::Closed if expired => Self::new_generation(&self.settings, inner, now),
            State::Open if expired => self.set_state(inner, State::HalfOpen, now),
            _ => {}
        }
        inner.state
    }

    fn set_state(&self, inner: &mut Inner, state: State, now: Instant) {
        if inner.state == state {
            return;
        }
        let previous = inner.state;
        inner.state = state;
        Self::new_generation(&self.settings, inner, now);
        (self.on_change)(&self.settings.name, previous, state);
    }

    fn new_generation(settings: &BreakerSettings, inner: &mut Inner, now: Instant) {
        inner.generation += 1;
        inner.counts = Counts::default();
        inner.expiry = match inner.state {
            State::Closed => (!settings.interval.is_zero()).then(|| now + settings.interval),
            State::Open => Some(now + settings.timeout),
            State::HalfOpen => None,
        };
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn breaker(max_errors: u32, interval: u64) -> (Breaker, Arc<Mutex<Vec<String>>>, Instant) {
        let log = Arc::new(Mutex::new(Vec::new()));
        let seen = log.clone();
        let t0 = Instant::now();
        let b = Breaker::new(
            BreakerSettings {
                name: "cb".into(),
                interval: Duration::from_secs(interval),
                timeout: Duration::from_secs(10),
                max_errors,
            },
            t0,
            move |name, from, to| {
                seen.lock()
                    .unwrap()
                    .push(format!("{name}: {} -> {}", from.name(), to.name()))
            },
        );
        (b, log, t0)
    }

    fn fail(b: &Breaker, at: Instant) {
        let g = b.before(at).unwrap();
        b.after(g, false, at);
    }

    #[test]
    fn it_opens_after_more_than_max_errors_and_recovers_through_half_open() {
        let (b, log, t0) = breaker(2, 0);
        for _ in 0..3 {
            fail(&b, t0);
        }
        assert_eq!(b.state(t0), State::Open);
        assert_eq!(b.before(t0), Err(Refusal::Open));
        // After the timeout one trial call goes through, no second one.
        let t1 = t0 + Duration::from_millis(10_001);
        let trial = b.before(t1).unwrap();
        assert_eq!(b.before(t1), Err(Refusal::TooManyRequests));
        b.after(trial, true, t1);
        assert_eq!(b.state(t1), State::Closed);
        assert_eq!(
            *log.lock().unwrap(),
            vec![
                "cb: closed -> open",
                "cb: open -> half-open",
                "cb: half-open -> closed"
            ]
        );
    }

    #[test]
    fn a_success_resets_the_run_and_a_failed_trial_reopens() {
        let (b, _, t0) = breaker(1, 0);
        fail(&b, t0);
        let g = b.before(t0).unwrap();
        b.after(g, true, t0);
        fail(&b, t0);
        assert_eq!(b.state(t0), State::Closed);
        fail(&b, t0);
        assert_eq!(b.state(t0), State::Open);
        let t1 = t0 + Duration::from_millis(10_001);
        fail(&b, t1);
        assert_eq!(b.state(t1), State::Open);
        assert_eq!(b.before(t1 + Duration::from_secs(9)), Err(Refusal::Open));
    }

    #[test]
    fn the_interval_clears_counts_and_late_results_are_ignored() {
        let (b, _, t0) = breaker(1, 5);
        fail(&b, t0);
        // A call let through before the counts were cleared...
        let late = b.before(t0).unwrap();
        let t1 = t0 + Duration::from_millis(5_001);
        fail(&b, t1);
        // ...fails in the next generation: ignored.
        b.after(late, false, t1);
        assert_eq!(b.state(t1), State::Closed);
        fail(&b, t1);
        assert_eq!(b.state(t1), State::Open);
    }
}
