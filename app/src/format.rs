//! Display formatting shared by server render and hydration (so both produce the same text).

/// `2026-11-21T09:05:00Z` → `2026-11-21 09:05 UTC`.
pub fn timestamp(rfc3339: &str) -> String {
    match (rfc3339.get(..10), rfc3339.get(11..16)) {
        (Some(date), Some(time)) => format!("{date} {time} UTC"),
        _ => rfc3339.to_owned(),
    }
}

pub fn money(amount: f64, currency: &str) -> String {
    let digits = if amount != 0.0 && amount.abs() < 0.1 { 3 } else { 2 };
    format!("{amount:.digits$} {currency}")
}

/// `3600` → `1 hour`, `5400` → `90 minutes`, `90` → `2 minutes`: the largest unit that divides
/// it exactly, else minutes rounded up (an expiry is never told shorter than it is).
pub fn span(secs: u64) -> String {
    let (n, unit) = match secs {
        s if s >= 86_400 && s % 86_400 == 0 => (s / 86_400, "day"),
        s if s >= 3_600 && s % 3_600 == 0 => (s / 3_600, "hour"),
        s if s >= 60 => (s.div_ceil(60), "minute"),
        s => (s, "second"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(timestamp("2026-11-21T09:05:31.123Z"), "2026-11-21 09:05 UTC");
        assert_eq!(money(10.0, "USD"), "10.00 USD");
        assert_eq!(money(0.039, "USD"), "0.039 USD");
        assert_eq!(span(300), "5 minutes");
        assert_eq!(span(90), "2 minutes");
        assert_eq!(span(3600), "1 hour");
        assert_eq!(span(3 * 3600), "3 hours");
        assert_eq!(span(86_400), "1 day");
        assert_eq!(span(7 * 86_400), "7 days");
        assert_eq!(span(5400), "90 minutes");
        assert_eq!(span(1), "1 second");
    }
}
