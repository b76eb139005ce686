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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(timestamp("2026-11-21T09:05:31.123Z"), "2026-11-21 09:05 UTC");
        assert_eq!(money(10.0, "USD"), "10.00 USD");
        assert_eq!(money(0.039, "USD"), "0.039 USD");
    }
}
