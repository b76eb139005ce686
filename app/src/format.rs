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

/// The largest amount of money Darkroom reads or keeps: a million dollars, in millionths.
pub const MAX_USD_MICROS: i64 = 1_000_000 * 1_000_000;

/// Millionths of a dollar to cents, as shown beside a price: `39000` → `$0.04`; below a cent but
/// not nothing, `< $0.01` (a price is never shown as free when it is not).
pub fn usd(micros: i64) -> String {
    let micros = micros.max(0);
    if micros > 0 && micros < 5_000 {
        return "< $0.01".to_owned();
    }
    let cents = (micros + 5_000) / 10_000;
    format!("${}.{:02}", cents / 100, cents % 100)
}

/// Millionths of a dollar written out exactly, at least to the cent, as a form field holds a
/// cap: `100000` → `0.10`, `1234567` → `1.234567`. [`parse_usd`] reads it back unchanged.
pub fn usd_exact(micros: i64) -> String {
    let micros = micros.max(0);
    let fraction = format!("{:06}", micros % 1_000_000);
    let fraction = fraction.trim_end_matches('0');
    format!("{}.{fraction:0<2}", micros / 1_000_000)
}

/// A dollar amount as a person types it (`5`, `0.10`, `$2.5`, ` 12.345678 `) to millionths of
/// a dollar. `None` for anything else: signs, exponents, more than six decimals, thousands
/// separators, or more than [`MAX_USD_MICROS`].
pub fn parse_usd(text: &str) -> Option<i64> {
    let text = text.trim();
    let text = text.strip_prefix('$').unwrap_or(text).trim_start();
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !digits(whole) || !digits(fraction) || fraction.len() > 6 {
        return None;
    }
    let whole: i64 = if whole.is_empty() { 0 } else { whole.parse().ok()? };
    let fraction: i64 = if fraction.is_empty() { 0 } else { format!("{fraction:0<6}").parse().ok()? };
    let micros = whole.checked_mul(1_000_000)?.checked_add(fraction)?;
    (micros <= MAX_USD_MICROS).then_some(micros)
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

/// How long until `target_ms` from `now_ms`, in the largest whole unit: `in 3 days`,
/// `in 5 hours`, `in 12 minutes`; `soon` within a minute (or past).
pub fn until(now_ms: i64, target_ms: i64) -> String {
    until_in(crate::messages::Locale::En, now_ms, target_ms)
}

/// [`until`] in `l`.
pub fn until_in(l: crate::messages::Locale, now_ms: i64, target_ms: i64) -> String {
    use crate::messages::{t, tf};
    let secs = (target_ms - now_ms) / 1000;
    let n = |n: i64| n.to_string();
    match secs {
        s if s >= 2 * 86_400 => tf(l, "time.in_days", &[("n", &n(s / 86_400))]),
        s if s >= 2 * 3_600 => tf(l, "time.in_hours", &[("n", &n(s / 3_600))]),
        s if s >= 120 => tf(l, "time.in_minutes", &[("n", &n(s / 60))]),
        s if s >= 60 => t(l, "time.in_a_minute").to_owned(),
        _ => t(l, "time.soon").to_owned(),
    }
}

/// Seconds as a stopwatch shows them: `40 s`, `1:05`, `1:02:03`.
pub fn elapsed(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s} s"),
        s if s < 3_600 => format!("{}:{:02}", s / 60, s % 60),
        s => format!("{}:{:02}:{:02}", s / 3_600, s / 60 % 60, s % 60),
    }
}

/// `2026-11-21T09:05:31.123Z` (UTC, as the server writes it) → milliseconds since 1970, or
/// `None` for anything else.
pub fn epoch_ms(rfc3339: &str) -> Option<i64> {
    let b = rfc3339.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| rfc3339.get(range)?.parse::<i64>().ok();
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let millis = match b.get(19) {
        // The server writes as many digits as it needs (`.5Z` is 500 ms): scale to three.
        Some(b'.') => {
            let digits = b[20..].iter().take_while(|c| c.is_ascii_digit()).count();
            let head = num(20..20 + digits.min(3))?;
            head * 10_i64.pow(3 - digits.min(3) as u32)
        }
        Some(b'Z') => 0,
        _ => return None,
    };
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + millis)
}

/// The current time in milliseconds: the browser's clock once hydrated, the server's while rendering.
pub fn now_ms() -> i64 {
    #[cfg(feature = "hydrate")]
    {
        js_sys::Date::now() as i64
    }
    #[cfg(not(feature = "hydrate"))]
    {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
    }
}

/// A query string value, percent-encoded.
pub fn urlencoding(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stopwatch_and_timestamps() {
        assert_eq!(elapsed(0), "0 s");
        assert_eq!(elapsed(40), "40 s");
        assert_eq!(elapsed(65), "1:05");
        assert_eq!(elapsed(3_723), "1:02:03");
        assert_eq!(epoch_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(epoch_ms("2026-12-01T04:58:09.123Z"), Some(1_796_101_089_123));
        assert_eq!(epoch_ms("2000-02-29T23:59:59Z"), Some(951_868_799_000));
        assert_eq!(epoch_ms("2026-12-01T04:58:09.5Z"), Some(1_796_101_089_500));
        assert_eq!(epoch_ms("2026-12-01T04:58:09.12Z"), Some(1_796_101_089_120));
        assert_eq!(epoch_ms("2026-12-01T04:58:09.Z"), None);
        assert_eq!(epoch_ms("yesterday"), None);
        assert_eq!(epoch_ms("2026-13-01T00:00:00Z"), None);
    }

    #[test]
    fn formats() {
        assert_eq!(timestamp("2026-11-21T09:05:31.123Z"), "2026-11-21 09:05 UTC");
        assert_eq!(money(10.0, "USD"), "10.00 USD");
        assert_eq!(money(0.039, "USD"), "0.039 USD");
        assert_eq!(usd(39_000), "$0.04");
        assert_eq!(usd(25_000), "$0.03");
        assert_eq!(usd(1_400_000), "$1.40");
        assert_eq!(usd(0), "$0.00");
        assert_eq!(usd(4_999), "< $0.01");
        assert_eq!(usd(5_000), "$0.01");
        assert_eq!(usd_exact(100_000), "0.10");
        assert_eq!(usd_exact(5_000_000), "5.00");
        assert_eq!(usd_exact(1_234_567), "1.234567");
        assert_eq!(parse_usd("0.10"), Some(100_000));
        assert_eq!(parse_usd(" $2.5 "), Some(2_500_000));
        assert_eq!(parse_usd("5"), Some(5_000_000));
        assert_eq!(parse_usd(".5"), Some(500_000));
        assert_eq!(parse_usd("5."), Some(5_000_000));
        for bad in ["", ".", "-1", "+1", "1e3", "1,000", "0.1234567", "1000001", "$", "1 000", "٣"] {
            assert_eq!(parse_usd(bad), None, "{bad:?}");
        }
        assert_eq!(span(300), "5 minutes");
        assert_eq!(span(90), "2 minutes");
        assert_eq!(span(3600), "1 hour");
        assert_eq!(span(3 * 3600), "3 hours");
        assert_eq!(span(86_400), "1 day");
        assert_eq!(span(7 * 86_400), "7 days");
        assert_eq!(span(5400), "90 minutes");
        assert_eq!(span(1), "1 second");
        let day = 86_400_000;
        assert_eq!(until(0, 3 * day + 5_000), "in 3 days");
        assert_eq!(until(0, day + 1_000), "in 24 hours");
        assert_eq!(until(0, 90_000), "in 1 minute");
        assert_eq!(until(0, 59_000), "soon");
        assert_eq!(until(day, 0), "soon");
        assert_eq!(until_in(crate::messages::Locale::Es, 0, 3 * day + 5_000), "en 3 días");
        assert_eq!(until_in(crate::messages::Locale::Es, 0, 90_000), "en 1 minuto");
    }

    #[cfg(feature = "ssr")]
    proptest::proptest! {
        /// A cap shown in its form field reads back as the same amount.
        #[test]
        fn amounts_read_back_exactly(micros in 0..=MAX_USD_MICROS) {
            proptest::prop_assert_eq!(parse_usd(&usd_exact(micros)), Some(micros));
        }

        /// Whatever is typed, the parser answers without panicking and never beyond its bound.
        #[test]
        fn any_text_reads_as_an_amount_in_bounds_or_nothing(text in "\\PC{0,24}|[$ ]?[0-9]{0,9}(\\.[0-9]{0,8})?") {
            if let Some(micros) = parse_usd(&text) {
                proptest::prop_assert!((0..=MAX_USD_MICROS).contains(&micros));
            }
        }

        /// Whatever moment the server writes, the browser reads the same millisecond back.
        #[test]
        fn the_servers_times_read_back_exactly(ms in 0_i64..8_000_000_000_000) {
            proptest::prop_assert_eq!(epoch_ms(&crate::server::db::rfc3339(ms)), Some(ms));
        }
    }
}
