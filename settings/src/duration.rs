//! Durations as Prefect's settings read them (pydantic's `timedelta`), held
//! as seconds.
//!
//! Accepted: a number of seconds (`3600`, `2.5`: what cfgd adds, and what
//! Prefect's `SecondsTimeDelta` settings take); ISO 8601 (`PT1H`, `P7D`,
//! `P1DT2H3M4.5S`, `-PT5S`; a year is 365 days and a month 30, as in
//! pydantic); and `[D day[s][,] ]HH:MM:SS[.f]` (`01:00:00`,
//! `1 day, 01:00:00`, `7d`). cfgd writes a duration into a profile as ISO
//! 8601 seconds (`PT3600S`), a string every Prefect duration setting parses,
//! and which survives Prefect rewriting the file (it writes every value back
//! as a string).

/// Parses a duration; the seconds.
///
/// # Errors
/// What was expected, when `text` is none of the accepted forms.
pub fn parse(text: &str) -> Result<f64, String> {
    let text = text.trim();
    let expected = || {
        format!(
            "expected a duration: seconds (3600), ISO 8601 (PT1H, P7D) or HH:MM:SS (01:00:00), got {text:?}"
        )
    };
    if let Ok(seconds) = text.parse::<f64>() {
        return if seconds.is_finite() {
            Ok(seconds)
        } else {
            Err(expected())
        };
    }
    let (sign, body) = match text.as_bytes().first() {
        Some(b'-') => (-1.0, &text[1..]),
        Some(b'+') => (1.0, &text[1..]),
        _ => (1.0, text),
    };
    let seconds = if let Some(iso) = body.strip_prefix('P') {
        iso8601(iso)
    } else {
        clock(body)
    };
    seconds.map(|s| sign * s).ok_or_else(expected)
}

/// `P` already stripped: `[nY][nM][nW][nD][T[nH][nM][nS]]`, at least one.
fn iso8601(text: &str) -> Option<f64> {
    let (date, time) = match text.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (text, None),
    };
    let mut total = 0.0;
    let mut parts = 0;
    for (part, units) in [
        (
            date,
            &[
                ('Y', 365.0 * 86_400.0),
                ('M', 30.0 * 86_400.0),
                ('W', 7.0 * 86_400.0),
                ('D', 86_400.0),
            ][..],
        ),
        (
            time.unwrap_or(""),
            &[('H', 3_600.0), ('M', 60.0), ('S', 1.0)][..],
        ),
    ] {
        let mut rest = part;
        let mut next_unit = 0;
        while !rest.is_empty() {
            let end = rest.find(|c: char| c.is_ascii_alphabetic())?;
            let (number, tail) = rest.split_at(end);
            let unit = tail.chars().next()?;
            let at = units[next_unit..].iter().position(|(u, _)| *u == unit)? + next_unit;
            let n: f64 = number
                .parse()
                .ok()
                .filter(|n: &f64| n.is_finite() && *n >= 0.0)?;
            total += n * units[at].1;
            parts += 1;
            next_unit = at + 1;
            rest = &tail[1..];
        }
    }
    // `PT` and `P` alone are not durations; `P1DT` is (pydantic agrees).
    (parts > 0).then_some(total)
}

/// `[D day[s][,] ]HH:MM:SS[.f]`, or `Nd` / `N day(s)` alone.
fn clock(text: &str) -> Option<f64> {
    let text = text.trim();
    let (days, time) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) if i > 0 && !text[i..].starts_with(':') => {
            let (n, rest) = text.split_at(i);
            let rest = rest.trim_start();
            let rest = ["days", "day", "d"]
                .iter()
                .find_map(|w| rest.strip_prefix(w))?;
            let rest = rest.trim_start().trim_start_matches(',').trim_start();
            (n.parse::<f64>().ok()?, rest)
        }
        _ => (0.0, text),
    };
    let mut seconds = days * 86_400.0;
    if !time.is_empty() {
        let mut fields = time.split(':');
        let (h, m, s) = (fields.next()?, fields.next()?, fields.next()?);
        if fields.next().is_some() || h.is_empty() || m.len() != 2 || s.len() < 2 {
            return None;
        }
        let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
        if !digits(h)
            || !digits(m)
            || !s
                .split_once('.')
                .map_or(digits(s), |(a, b)| digits(a) && digits(b))
        {
            return None;
        }
        let (h, m, s): (f64, f64, f64) = (h.parse().ok()?, m.parse().ok()?, s.parse().ok()?);
        if m >= 60.0 || s >= 60.0 {
            return None;
        }
        seconds += h * 3_600.0 + m * 60.0 + s;
    } else if days == 0.0 && text.is_empty() {
        return None;
    }
    Some(seconds)
}

/// ISO 8601 seconds: `PT3600S`, `PT2.5S`, `-PT5S`.
pub fn iso(seconds: f64) -> String {
    let sign = if seconds < 0.0 { "-" } else { "" };
    format!("{sign}PT{}S", seconds.abs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_forms_pydantic_reads() {
        for (text, seconds) in [
            ("3600", 3600.0),
            ("2.5", 2.5),
            ("PT3600S", 3600.0),
            ("PT1.5H", 5400.0),
            ("P7D", 604_800.0),
            ("P1M", 2_592_000.0),
            ("P1Y2M", 36_720_000.0),
            ("P1W2D", 777_600.0),
            ("P1DT", 86_400.0),
            ("P1DT2H3M4.5S", 93_784.5),
            ("-PT5S", -5.0),
            ("+PT5S", 5.0),
            ("01:00:00", 3600.0),
            ("25:00:00", 90_000.0),
            ("00:00:01.5", 1.5),
            ("1 day, 01:00:00", 90_000.0),
            ("2 days, 1:00:00", 176_400.0),
            ("3 days 01:00:00", 262_800.0),
            ("-1 day, 23:00:00", -169_200.0),
            ("7d", 604_800.0),
            ("1 day", 86_400.0),
        ] {
            assert_eq!(parse(text), Ok(seconds), "{text}");
        }
    }

    #[test]
    fn rejects_what_pydantic_rejects() {
        for text in [
            "", "P", "PT", "p1d", "2h", "1:00", "1d2h", "PT1S1H", "inf", "nan", "01:60:00", "soon",
        ] {
            assert!(parse(text).is_err(), "{text:?} should not parse");
        }
        assert_eq!(
            parse("soon").unwrap_err(),
            "expected a duration: seconds (3600), ISO 8601 (PT1H, P7D) or HH:MM:SS (01:00:00), got \"soon\""
        );
    }

    #[test]
    fn writes_iso_seconds_that_read_back() {
        for s in [0.0, 3600.0, 2.5, -5.0, 7_776_000.0, 0.000_001] {
            assert_eq!(parse(&iso(s)), Ok(s), "{}", iso(s));
        }
        assert_eq!(iso(3600.0), "PT3600S");
        assert_eq!(iso(-5.0), "-PT5S");
    }
}
