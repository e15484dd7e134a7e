//! Money and quantities as integers.
//!
//! Money is a count of kopecks in an `i64`. Quantities are thousandths of a unit in an
//! `i64` (three decimals: grams of a kilogram, millilitres of a litre), which is what
//! both protocol families carry on the wire. Conversions to a protocol's own scale
//! (Shtrih FF46 uses millionths) are exact multiplications done by the codec.
//!
//! In JSON, money is always an integer number of kopecks. A quantity may be an integer
//! (`2`), a decimal string (`"0.250"`) or a decimal literal (`1.5`); a literal is read
//! through its shortest decimal text, never through float arithmetic, and more than
//! three decimals is an error rather than a silent rounding.

use serde::{Deserialize, Serialize};
use std::fmt;

/// An amount of money in kopecks (копейки). 100 kopecks = 1 rouble.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = i64, example = 150000))]
#[serde(transparent)]
pub struct Money(pub i64);

impl Money {
    pub const ZERO: Money = Money(0);

    pub fn kopecks(self) -> i64 {
        self.0
    }
    pub fn checked_add(self, other: Money) -> Option<Money> {
        self.0.checked_add(other.0).map(Money)
    }
    pub fn checked_sub(self, other: Money) -> Option<Money> {
        self.0.checked_sub(other.0).map(Money)
    }
    pub fn is_negative(self) -> bool {
        self.0 < 0
    }

    /// Parses roubles as people type them: `1000`, `1000.50`, `1 000,5`. At most two
    /// decimals, no sign. Exact: the text is read as decimal digits, never as a float.
    pub fn parse_roubles(text: &str) -> Result<Money, String> {
        let t: String = text.trim().chars().filter(|c| *c != ' ' && *c != '\u{a0}').collect();
        let t = t.replace(',', ".");
        let (int, frac) = t.split_once('.').unwrap_or((&t, ""));
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(int) || !(frac.is_empty() || digits(frac)) || frac.len() > 2 {
            return Err(format!("{text:?} is not a sum in roubles (e.g. 1500 or 1500,50)"));
        }
        let r: i64 = int.parse().map_err(|_| format!("{text:?} is too large"))?;
        let k: i64 = format!("{frac:0<2}").parse().unwrap_or(0);
        r.checked_mul(100).and_then(|v| v.checked_add(k)).map(Money).ok_or_else(|| format!("{text:?} is too large"))
    }
}

/// Prints roubles with a comma and grouped thousands, as Russian receipts do: `22 412,50`.
impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let roubles = (abs / 100).to_string();
        let mut grouped = String::new();
        for (i, ch) in roubles.chars().enumerate() {
            if i > 0 && (roubles.len() - i) % 3 == 0 {
                grouped.push(' ');
            }
            grouped.push(ch);
        }
        write!(f, "{sign}{grouped},{:02}", abs % 100)
    }
}

/// A quantity in thousandths of a unit: `Quantity(1500)` is 1.5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = String, example = "1.5"))]
pub struct Quantity(pub i64);

impl Quantity {
    pub const SCALE: i64 = 1000;
    pub const ONE: Quantity = Quantity(1000);

    pub fn milli(self) -> i64 {
        self.0
    }

    /// Parses `"2"`, `"0.25"`, `"1.500"`. At most three decimals; no sign, no exponent.
    pub fn parse(text: &str) -> Result<Quantity, String> {
        let t = text.trim();
        let (int, frac) = match t.split_once('.') {
            Some((i, f)) => (i, f),
            None => (t, ""),
        };
        if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("quantity {text:?} is not a plain decimal number"));
        }
        if frac.len() > 3 {
            return Err(format!("quantity {text:?} has more than three decimals"));
        }
        let int: i64 = int.parse().map_err(|_| format!("quantity {text:?} is too large"))?;
        let mut frac_val: i64 = 0;
        for (i, b) in frac.bytes().chain(std::iter::repeat(b'0')).take(3).enumerate() {
            let _ = i;
            frac_val = frac_val * 10 + i64::from(b - b'0');
        }
        int.checked_mul(Self::SCALE)
            .and_then(|v| v.checked_add(frac_val))
            .map(Quantity)
            .ok_or_else(|| format!("quantity {text:?} is too large"))
    }

    /// `price × quantity`, rounded half away from zero to whole kopecks.
    pub fn times(self, price: Money) -> Option<Money> {
        let p = i128::from(price.0) * i128::from(self.0);
        let half = i128::from(Self::SCALE / 2);
        let r = if p >= 0 { (p + half) / i128::from(Self::SCALE) } else { (p - half) / i128::from(Self::SCALE) };
        i64::try_from(r).ok().map(Money)
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (i, r) = (self.0 / Self::SCALE, (self.0 % Self::SCALE).abs());
        if r == 0 {
            write!(f, "{i}")
        } else {
            let s = format!("{r:03}");
            write!(f, "{i}.{}", s.trim_end_matches('0'))
        }
    }
}

impl Serialize for Quantity {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Quantity;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a quantity: an integer, or a decimal with at most three decimals")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Quantity, E> {
                i64::try_from(v)
                    .ok()
                    .and_then(|v| v.checked_mul(Quantity::SCALE))
                    .map(Quantity)
                    .ok_or_else(|| E::custom("quantity is too large"))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Quantity, E> {
                if v < 0 {
                    return Err(E::custom("quantity must not be negative"));
                }
                self.visit_u64(v as u64)
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Quantity, E> {
                // The shortest text that reads back as this literal, parsed as decimal:
                // no float arithmetic touches the value.
                if !v.is_finite() || v < 0.0 {
                    return Err(E::custom("quantity must be a finite non-negative number"));
                }
                Quantity::parse(&format!("{v}")).map_err(E::custom)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Quantity, E> {
                Quantity::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_display_groups_thousands() {
        assert_eq!(Money(2_241_250).to_string(), "22 412,50");
        assert_eq!(Money(5).to_string(), "0,05");
        assert_eq!(Money(-20_000).to_string(), "-200,00");
        assert_eq!(Money(100_000_000).to_string(), "1 000 000,00");
    }

    #[test]
    fn parse_roubles() {
        assert_eq!(Money::parse_roubles("1 000,5"), Ok(Money(100_050)));
        assert_eq!(Money::parse_roubles("22412.50"), Ok(Money(2_241_250)));
        assert_eq!(Money::parse_roubles("7"), Ok(Money(700)));
        assert!(Money::parse_roubles("-5").is_err());
        assert!(Money::parse_roubles("1.234").is_err());
        assert!(Money::parse_roubles("99999999999999999999").is_err());
    }

    #[test]
    fn quantity_parse_and_times() {
        assert_eq!(Quantity::parse("1.5").unwrap(), Quantity(1500));
        assert_eq!(Quantity::parse("0.001").unwrap(), Quantity(1));
        assert!(Quantity::parse("0.0001").is_err());
        assert!(Quantity::parse("-1").is_err());
        assert!(Quantity::parse("1e3").is_err());
        assert_eq!(Quantity(1500).times(Money(333)), Some(Money(500))); // 499.5 -> 500
        let q: Quantity = serde_json::from_str("1.25").unwrap();
        assert_eq!(q, Quantity(1250));
        let q: Quantity = serde_json::from_str("\"0.333\"").unwrap();
        assert_eq!(q, Quantity(333));
        assert!(serde_json::from_str::<Quantity>("0.1234").is_err());
        assert_eq!(Quantity(1250).to_string(), "1.25");
    }
}
