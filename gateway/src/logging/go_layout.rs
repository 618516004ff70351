//! Go's time layouts (`2006/01/02 - 15:04:05.000`), as KrakenD's log
//! patterns write times, turned into chrono's format items once.

/// Go's layout elements and chrono's spelling of each, longest first where
/// one starts another (`January` before `Jan`, `2006` before `2`).
const ELEMENTS: &[(&str, &str)] = &[
    ("January", "%B"),
    ("Monday", "%A"),
    ("Jan", "%b"),
    ("Mon", "%a"),
    ("MST", "%Z"),
    ("2006", "%Y"),
    ("-07:00:00", "%:z"),
    ("-070000", "%z"),
    ("-07:00", "%:z"),
    ("-0700", "%z"),
    ("-07", "%z"),
    ("Z07:00", "%:z"),
    ("Z0700", "%z"),
    (".000000000", "%.9f"),
    (".000000", "%.6f"),
    (".000", "%.3f"),
    (",000000000", "%.9f"),
    (",000000", "%.6f"),
    (",000", "%.3f"),
    ("002", "%j"),
    ("_2", "%e"),
    ("01", "%m"),
    ("02", "%d"),
    ("03", "%I"),
    ("04", "%M"),
    ("05", "%S"),
    ("06", "%y"),
    ("15", "%H"),
    ("PM", "%p"),
    ("pm", "%P"),
    ("1", "%-m"),
    ("2", "%-d"),
    ("3", "%-I"),
    ("4", "%-M"),
    ("5", "%-S"),
];

/// The chrono format string of a Go layout; text that is no element is
/// kept as it is.
pub fn to_strftime(layout: &str) -> String {
    let mut out = String::with_capacity(layout.len() * 2);
    let mut rest = layout;
    'outer: while !rest.is_empty() {
        for (element, spelling) in ELEMENTS {
            if let Some(after) = rest.strip_prefix(element) {
                out.push_str(spelling);
                rest = after;
                continue 'outer;
            }
        }
        let mut chars = rest.chars();
        if let Some(c) = chars.next() {
            if c == '%' {
                out.push_str("%%");
            } else {
                out.push(c);
            }
        }
        rest = chars.as_str();
    }
    out
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn krakends_layouts_read_as_go_writes_them() {
        let at = chrono::Utc
            .with_ymd_and_hms(2024, 3, 7, 9, 5, 2)
            .unwrap()
            .with_timezone(&chrono::FixedOffset::east_opt(0).unwrap())
            + chrono::Duration::milliseconds(42);
        let text = |layout: &str| at.format(&to_strftime(layout)).to_string();
        assert_eq!(
            text("2006/01/02 - 15:04:05.000"),
            "2024/03/07 - 09:05:02.042"
        );
        assert_eq!(
            text("2006-01-02T15:04:05.000+00:00"),
            "2024-03-07T09:05:02.042+00:00"
        );
        assert_eq!(text("Mon Jan _2 3:04PM"), "Thu Mar  7 9:05AM");
        assert_eq!(text("100%"), "300%");
    }
}
