//! Lengths of time in Russian, in the unit that fits: «10 мин», «3 ч 5 мин», «2 дн 4 ч».

use time::Duration;

/// The magnitude of `d` (its sign is the caller's business), rounded down to minutes.
pub fn span_ru(d: Duration) -> String {
    let mins = d.whole_minutes().unsigned_abs();
    let (days, hours, m) = (mins / 1440, mins / 60 % 24, mins % 60);
    match (days, hours, m) {
        (0, 0, m) => format!("{m} мин"),
        (0, h, 0) => format!("{h} ч"),
        (0, h, m) => format!("{h} ч {m} мин"),
        (d, 0, _) => format!("{d} дн"),
        (d, h, _) => format!("{d} дн {h} ч"),
    }
}

/// Hours and minutes up to two days («26 ч 14 мин»), then as [`span_ru`]: for a
/// shift's age, which people count against 24 hours.
pub fn hours_ru(d: Duration) -> String {
    let mins = d.whole_minutes().unsigned_abs();
    if mins >= 48 * 60 {
        return span_ru(d);
    }
    match (mins / 60, mins % 60) {
        (0, m) => format!("{m} мин"),
        (h, 0) => format!("{h} ч"),
        (h, m) => format!("{h} ч {m} мин"),
    }
}

/// The same in English, for the `title_en` texts.
pub fn span_en(d: Duration) -> String {
    let mins = d.whole_minutes().unsigned_abs();
    let (days, hours, m) = (mins / 1440, mins / 60 % 24, mins % 60);
    match (days, hours) {
        (0, 0) => format!("{m} min"),
        (0, h) => format!("{h} h {m} min"),
        (d, h) => format!("{d} d {h} h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fits_the_unit() {
        assert_eq!(span_ru(Duration::minutes(10)), "10 мин");
        assert_eq!(span_ru(Duration::minutes(-185)), "3 ч 5 мин");
        assert_eq!(span_ru(Duration::hours(3)), "3 ч");
        assert_eq!(span_ru(Duration::minutes(26 * 60 + 14)), "1 дн 2 ч");
        assert_eq!(span_ru(Duration::days(2)), "2 дн");
        assert_eq!(span_ru(Duration::seconds(59)), "0 мин");
        assert_eq!(hours_ru(Duration::minutes(26 * 60 + 14)), "26 ч 14 мин");
        assert_eq!(hours_ru(Duration::hours(50)), "2 дн 2 ч");
    }
}
