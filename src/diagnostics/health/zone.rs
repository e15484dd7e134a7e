//! The register's time zone.
//!
//! A register keeps local wall-clock time with no zone: its clock, its documents and its
//! shift times are the shop's local time. Russia has eleven zones (UTC+2 … UTC+12) and
//! no daylight saving time since 26 October 2014, so one fixed offset per register is
//! exact. To compare the register's clock with the PC's we turn both into instants: the
//! register's local time at this offset, the PC's clock in UTC. The PC's own zone does
//! not matter.
//!
//! The default is Moscow time (UTC+3): registers are set to the shop's local time, and
//! most units leave the factory and the service centre on Moscow time. A shop elsewhere
//! sets `timezone` on its `[[devices]]` entry (or `--timezone` for `device … check`).

use serde::{Serialize, Serializer};
use time::UtcOffset;

/// A register's fixed UTC offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceZone(pub UtcOffset);

impl Default for DeviceZone {
    fn default() -> Self {
        DeviceZone::MOSCOW
    }
}

/// The zones of Russia by their usual IANA names (fixed offsets since 2014).
const RUSSIAN_ZONES: &[(&str, i8)] = &[
    ("europe/kaliningrad", 2),
    ("europe/moscow", 3),
    ("europe/simferopol", 3),
    ("europe/volgograd", 3),
    ("europe/kirov", 3),
    ("europe/samara", 4),
    ("europe/ulyanovsk", 4),
    ("europe/saratov", 4),
    ("europe/astrakhan", 4),
    ("asia/yekaterinburg", 5),
    ("asia/omsk", 6),
    ("asia/novosibirsk", 7),
    ("asia/barnaul", 7),
    ("asia/tomsk", 7),
    ("asia/novokuznetsk", 7),
    ("asia/krasnoyarsk", 7),
    ("asia/irkutsk", 8),
    ("asia/chita", 9),
    ("asia/yakutsk", 9),
    ("asia/khandyga", 9),
    ("asia/vladivostok", 10),
    ("asia/ust-nera", 10),
    ("asia/magadan", 11),
    ("asia/sakhalin", 11),
    ("asia/srednekolymsk", 11),
    ("asia/kamchatka", 12),
    ("asia/anadyr", 12),
];

impl DeviceZone {
    pub const MOSCOW: DeviceZone = DeviceZone(match UtcOffset::from_hms(3, 0, 0) {
        Ok(o) => o,
        Err(_) => UtcOffset::UTC,
    });

    /// Reads `+03:00`, `+3`, `-01:30`, `UTC+5`, `GMT+5`, `МСК`, `МСК+2`, `MSK-1` or a
    /// Russian IANA name such as `Asia/Yekaterinburg`.
    pub fn parse(text: &str) -> Result<DeviceZone, String> {
        let t = text.trim();
        if let Some((_, h)) = RUSSIAN_ZONES.iter().find(|(n, _)| n.eq_ignore_ascii_case(t)) {
            return hours_minutes(i32::from(*h), 0);
        }
        let upper = t.to_uppercase();
        for (prefix, base) in [("МСК", 3), ("MSK", 3), ("UTC", 0), ("GMT", 0)] {
            if let Some(rest) = upper.strip_prefix(prefix) {
                if rest.is_empty() {
                    return hours_minutes(base, 0);
                }
                let (h, m) = signed_offset(rest).ok_or_else(|| bad(t))?;
                return hours_minutes(base + h, if h < 0 { -m } else { m });
            }
        }
        let (h, m) = signed_offset(t).ok_or_else(|| bad(t))?;
        hours_minutes(h, if h < 0 || t.starts_with('-') { -m } else { m })
    }

    /// `UTC+3`, `UTC+5:30`, `UTC−1` for people.
    pub fn label(&self) -> String {
        let (h, m, _) = self.0.as_hms();
        let sign = if self.0.is_negative() { "-" } else { "+" };
        if m == 0 {
            format!("UTC{sign}{}", h.unsigned_abs())
        } else {
            format!("UTC{sign}{}:{:02}", h.unsigned_abs(), m.unsigned_abs())
        }
    }
}

fn bad(t: &str) -> String {
    format!("{t:?}: expected an offset such as +03:00, UTC+5, МСК+2 or Asia/Yekaterinburg")
}

/// `+3`, `-1`, `+03:00`, `+0530` → (hours with sign, minutes).
fn signed_offset(s: &str) -> Option<(i32, i32)> {
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let (h, m) = match rest.split_once(':') {
        Some((h, m)) => (h, m),
        None if rest.len() == 4 => rest.split_at(2),
        None => (rest, "0"),
    };
    if h.is_empty() || h.len() > 2 || m.is_empty() || m.len() > 2 || !(h.chars().chain(m.chars()).all(|c| c.is_ascii_digit())) {
        return None;
    }
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    (m < 60).then_some((sign * h, m))
}

fn hours_minutes(h: i32, m: i32) -> Result<DeviceZone, String> {
    if !(-12..=14).contains(&h) {
        return Err(format!("UTC{h:+}: an offset must be between -12 and +14 hours"));
    }
    UtcOffset::from_hms(h as i8, m as i8, 0).map(DeviceZone).map_err(|e| e.to_string())
}

impl DeviceZone {
    /// `+05:00`, as the config's `timezone` takes it.
    pub fn offset_text(&self) -> String {
        let (h, m, _) = self.0.as_hms();
        let sign = if self.0.is_negative() { '-' } else { '+' };
        format!("{sign}{:02}:{:02}", h.unsigned_abs(), m.unsigned_abs())
    }
}

impl Serialize for DeviceZone {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.offset_text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hours(t: &str) -> i8 {
        DeviceZone::parse(t).unwrap().0.whole_hours()
    }

    #[test]
    fn spellings() {
        assert_eq!(hours("+03:00"), 3);
        assert_eq!(hours("+3"), 3);
        assert_eq!(hours("UTC+5"), 5);
        assert_eq!(hours("utc+05:00"), 5);
        assert_eq!(hours("МСК"), 3);
        assert_eq!(hours("МСК+4"), 7);
        assert_eq!(hours("msk-1"), 2);
        assert_eq!(hours("Asia/Yekaterinburg"), 5);
        assert_eq!(hours("UTC"), 0);
        assert_eq!(DeviceZone::parse("-01:30").unwrap().0.whole_minutes(), -90);
        assert_eq!(DeviceZone::parse("+0530").unwrap().0.whole_minutes(), 330);
        for bad in ["", "3", "+25", "Europe/Paris", "UTC+3x", "+3:75"] {
            assert!(DeviceZone::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(DeviceZone::default().label(), "UTC+3");
        assert_eq!(serde_json::to_string(&DeviceZone::parse("UTC+5:30").unwrap()).unwrap(), "\"+05:30\"");
    }
}
