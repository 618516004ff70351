//! An endpoint's static data (`proxy.static`): keys added to the response,
//! or answered in place of a failure, according to the strategy, as
//! KrakenD's static middleware decides.

use sepia_config::StaticStrategy;
use serde_json::{Map, Value};

/// How the backends fared, as the strategies tell it apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every backend answered; no failure.
    Complete,
    /// No backend failed, but the response is partial (a backend's error
    /// reported under `return_error_details`).
    Incomplete,
    /// A backend failed (some data may have arrived from others), or the
    /// endpoint timed out.
    Errored,
}

/// Whether `strategy` adds its data for `outcome`.
pub fn applies(strategy: StaticStrategy, outcome: Outcome) -> bool {
    match strategy {
        StaticStrategy::Always => true,
        StaticStrategy::Success => outcome != Outcome::Errored,
        StaticStrategy::Errored => outcome == Outcome::Errored,
        StaticStrategy::Complete => outcome == Outcome::Complete,
        StaticStrategy::Incomplete => outcome != Outcome::Complete,
    }
}

/// Adds the static keys to `data`; they replace a backend's keys of the
/// same name.
pub fn add(fixed: &Map<String, Value>, data: &mut Map<String, Value>) {
    for (key, value) in fixed {
        data.insert(key.clone(), value.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strategies_match_krakend() {
        // Outcomes: complete, incomplete, errored.
        let table = [
            (StaticStrategy::Always, [true, true, true]),
            (StaticStrategy::Success, [true, true, false]),
            (StaticStrategy::Errored, [false, false, true]),
            (StaticStrategy::Complete, [true, false, false]),
            (StaticStrategy::Incomplete, [false, true, true]),
        ];
        for (strategy, expected) in table {
            let got = [
                applies(strategy, Outcome::Complete),
                applies(strategy, Outcome::Incomplete),
                applies(strategy, Outcome::Errored),
            ];
            assert_eq!(got, expected, "{strategy:?}");
        }
    }

    #[test]
    fn static_keys_win_over_backend_keys() {
        let fixed = json!({"a": 1, "b": {"x": true}})
            .as_object()
            .unwrap()
            .clone();
        let mut data = json!({"a": 0, "c": 3}).as_object().unwrap().clone();
        add(&fixed, &mut data);
        assert_eq!(
            Value::Object(data),
            json!({"a": 1, "b": {"x": true}, "c": 3})
        );
    }
}
