//! Go duration strings (`300ms`, `1m30s`, `2h`), as KrakenD's configuration
//! writes them. Here, in the interface crate, so that plugins read their
//! settings exactly as the gateway reads its own without linking it.

use std::time::Duration;

/// Parses a Go duration string (`"300ms"`, `"1m30s"`, `"0"`). Negative
/// durations are refused: no setting of a gateway is meaningful below zero.
/// The error says what is wrong and how to write it, ready to show a user.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err("an empty duration: write it as a number with a unit, such as \"2s\"".into());
    }
    if trimmed == "0" {
        return Ok(Duration::ZERO);
    }
    let body = trimmed.strip_prefix('+').unwrap_or(trimmed);
    if body.starts_with('-') {
        return Err(format!(
            "\"{text}\" is negative: durations must be zero or more"
        ));
    }
    let mut rest = body;
    let mut total_nanos: f64 = 0.0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number = &rest[..number_len];
        if number.is_empty() || number == "." {
            return Err(invalid(text));
        }
        let value: f64 = number.parse().map_err(|_| invalid(text))?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let nanos_per_unit = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => {
                return Err(format!(
                    "\"{text}\" has a number without a unit: add one of ns, us, ms, s, m, h"
                ))
            }
            other => {
                return Err(format!(
                    "\"{text}\" has an unknown unit \"{other}\": use ns, us, ms, s, m or h"
                ))
            }
        };
        total_nanos += value * nanos_per_unit;
    }
    if total_nanos > u64::MAX as f64 {
        return Err(format!("\"{text}\" is too long a duration"));
    }
    Ok(Duration::from_nanos(total_nanos.round() as u64))
}

fn invalid(text: &str) -> String {
    format!("\"{text}\" is not a duration: write a number with a unit, such as \"300ms\", \"2s\" or \"1m30s\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_parse() {
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("300ms").unwrap(), Duration::from_millis(300));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1.5h").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("10µs").unwrap(), Duration::from_micros(10));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration("+5ns").unwrap(), Duration::from_nanos(5));
    }

    #[test]
    fn bad_durations_explain_themselves() {
        assert!(parse_duration("2").unwrap_err().contains("without a unit"));
        assert!(parse_duration("2 seconds")
            .unwrap_err()
            .contains("unknown unit"));
        assert!(parse_duration("-1s").unwrap_err().contains("negative"));
        assert!(parse_duration("").unwrap_err().contains("empty"));
        assert!(parse_duration("s").unwrap_err().contains("not a duration"));
        assert!(parse_duration("1..2s")
            .unwrap_err()
            .contains("not a duration"));
    }
}
