//! Instruments bound once per attribute set.
//!
//! OpenTelemetry's SDK finds each measurement's attribute set by hashing
//! it (eight to eleven strings here) in a map behind a lock that every
//! worker shares: about 0.3 µs a measurement, and a request makes twelve.
//! A bound instrument skips that look-up. The gateway keeps its bound
//! instruments beside what they measure (an endpoint, a backend), found by
//! a small key of the attributes that vary (a status, an outcome), so a
//! measurement costs a scan of a few slots and the aggregator's update.
//!
//! Binding happens on the first measurement of a key and never before:
//! with cumulative temporality the SDK exports every bound attribute set,
//! so binding ahead would export series that KrakenD would not.

use std::sync::OnceLock;

/// Up to `capacity` keys and what was bound for each, filled as keys are
/// first seen. Reading takes no lock: each slot is set once, and a worker
/// that loses the race for a slot to another key moves on to the next.
/// The slots are allocated on first use, so a meter that measures nothing
/// costs a pointer.
pub struct Bindings<K, V> {
    capacity: usize,
    slots: OnceLock<Box<[Slot<K, V>]>>,
}

/// A key and what was bound for it, once set.
type Slot<K, V> = OnceLock<(K, V)>;

impl<K, V> Bindings<K, V> {
    /// Room for `capacity` keys; beyond them, [`Bindings::get`] binds for
    /// the one measurement, which records what an unbound one would.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            slots: OnceLock::new(),
        }
    }

    /// What is bound for the key that `matches`, `make` binding it (and
    /// owning the key) the first time it is seen.
    pub fn get(&self, matches: impl Fn(&K) -> bool, make: impl Fn() -> (K, V)) -> Held<'_, V> {
        let slots = self
            .slots
            .get_or_init(|| (0..self.capacity).map(|_| OnceLock::new()).collect());
        for slot in slots.iter() {
            let (seen, bound) = match slot.get() {
                Some(entry) => entry,
                None => slot.get_or_init(&make),
            };
            if matches(seen) {
                return Held::Kept(bound);
            }
        }
        Held::Once(make().1)
    }
}

/// What [`Bindings::get`] found: kept in a slot, or made for one
/// measurement when every slot holds another key.
pub enum Held<'a, V> {
    Kept(&'a V),
    Once(V),
}

impl<V> std::ops::Deref for Held<'_, V> {
    type Target = V;

    fn deref(&self) -> &V {
        match self {
            Held::Kept(kept) => kept,
            Held::Once(once) => once,
        }
    }
}

impl<K, V> std::fmt::Debug for Bindings<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let bound = self
            .slots
            .get()
            .map_or(0, |s| s.iter().filter(|s| s.get().is_some()).count());
        f.debug_struct("Bindings")
            .field("capacity", &self.capacity)
            .field("bound", &bound)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn each_key_is_bound_once_and_made_for_once_beyond_capacity() {
        let made = AtomicUsize::new(0);
        let bindings = Bindings::new(2);
        let get = |key: u16| {
            let held = bindings.get(
                |k| *k == key,
                || {
                    made.fetch_add(1, Ordering::Relaxed);
                    (key, key * 10)
                },
            );
            (matches!(held, Held::Kept(_)), *held)
        };
        assert_eq!(get(200), (true, 2000));
        assert_eq!(get(200), (true, 2000));
        assert_eq!(get(404), (true, 4040));
        assert_eq!(get(500), (false, 5000));
        assert_eq!(get(500), (false, 5000));
        assert_eq!(get(404), (true, 4040));
        assert_eq!(made.load(Ordering::Relaxed), 4);
    }

    #[test]
    fn racing_workers_agree_on_each_key() {
        let bindings = std::sync::Arc::new(Bindings::new(8));
        let workers: Vec<_> = (0..4)
            .map(|worker| {
                let bindings = bindings.clone();
                std::thread::spawn(move || {
                    for round in 0..200u32 {
                        let key = (round + worker) % 8;
                        let bound = bindings.get(|k| *k == key, || (key, key + 100));
                        assert!(matches!(bound, Held::Kept(_)));
                        assert_eq!(*bound, key + 100);
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.join().unwrap();
        }
    }
}
