//! Lengths of time in Russian, in the unit that fits: «10 мин», «3 ч 5 мин», «2 дня 4 ч».

use time::Duration;

/// Whole minutes, rounded to the nearest: clocks report whole seconds and the ФН whole
/// minutes, so 9 min 59 s is what «10 мин» means.
fn minutes(d: Duration) -> u64 {
    (d.whole_seconds().unsigned_abs() + 30) / 60
}

/// (days, hours, minutes) to show: from a day on, rounded to the nearest hour.
fn parts(d: Duration) -> (u64, u64, u64) {
    let mins = minutes(d);
    if mins >= 1440 - 30 {
        let hours = (mins + 30) / 60;
        (hours / 24, hours % 24, 0)
    } else {
        (0, mins / 60, mins % 60)
    }
}

/// The magnitude of `d` (its sign is the caller's business).
pub fn span_ru(d: Duration) -> String {
    match parts(d) {
        (0, 0, m) => format!("{m} мин"),
        (0, h, 0) => format!("{h} ч"),
        (0, h, m) => format!("{h} ч {m} мин"),
        (d, 0, _) => days_ru(d),
        (d, h, _) => format!("{} {h} ч", days_ru(d)),
    }
}

/// «1 день», «2 дня», «5 дней», «21 день»: a word read aloud, not an abbreviation.
fn days_ru(d: u64) -> String {
    let word = match (d % 10, d % 100) {
        (_, 11..=14) => "дней",
        (1, _) => "день",
        (2..=4, _) => "дня",
        _ => "дней",
    };
    format!("{d} {word}")
}

/// Hours and minutes up to two days («26 ч 14 мин»), then as [`span_ru`]: for a
/// shift's age, which people count against 24 hours.
pub fn hours_ru(d: Duration) -> String {
    let mins = minutes(d);
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
    let (days, hours, m) = parts(d);
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
    fn days_read_aloud() {
        let says = |d: i64| span_ru(Duration::days(d));
        assert_eq!([says(1), says(4), says(11), says(14), says(21), says(22), says(25), says(111)], [
            "1 день", "4 дня", "11 дней", "14 дней", "21 день", "22 дня", "25 дней", "111 дней"
        ]);
    }

    #[test]
    fn fits_the_unit() {
        assert_eq!(span_ru(Duration::minutes(10)), "10 мин");
        assert_eq!(span_ru(Duration::minutes(-185)), "3 ч 5 мин");
        assert_eq!(span_ru(Duration::hours(3)), "3 ч");
        assert_eq!(span_ru(Duration::minutes(26 * 60 + 14)), "1 день 2 ч");
        assert_eq!(span_ru(Duration::days(2)), "2 дня");
        assert_eq!(span_ru(Duration::seconds(29)), "0 мин");
        assert_eq!(span_ru(Duration::seconds(599)), "10 мин");
        assert_eq!(span_ru(Duration::minutes(5 * 1440 - 1)), "5 дней");
        assert_eq!(hours_ru(Duration::minutes(26 * 60 + 14)), "26 ч 14 мин");
        assert_eq!(hours_ru(Duration::hours(50)), "2 дня 2 ч");
    }
}
