//! Packed BCD (big-endian, two digits a byte) for money, quantities and dates, and
//! CP866 text: the encodings of the ATOL command layer.

use kkm_core::{Money, Quantity};

/// Encodes `v` (non-negative) in `n` bytes of packed BCD; too-large values saturate to all nines.
pub fn encode(v: u64, n: usize) -> Vec<u8> {
    let max = 10u64.checked_pow(2 * n as u32).map_or(u64::MAX, |m| m - 1);
    let mut v = v.min(max);
    let mut out = vec![0u8; n];
    for b in out.iter_mut().rev() {
        let lo = (v % 10) as u8;
        v /= 10;
        let hi = (v % 10) as u8;
        v /= 10;
        *b = (hi << 4) | lo;
    }
    out
}

/// Decodes packed BCD; `None` if a nibble is not a decimal digit.
pub fn decode(b: &[u8]) -> Option<u64> {
    b.iter().try_fold(0u64, |acc, x| {
        let (hi, lo) = (x >> 4, x & 0x0F);
        (hi < 10 && lo < 10).then(|| acc.saturating_mul(100).saturating_add(u64::from(hi * 10 + lo)))
    })
}

pub fn money(m: Money, n: usize) -> Vec<u8> {
    encode(m.0.max(0) as u64, n)
}

pub fn quantity(q: Quantity) -> Vec<u8> {
    encode(q.0.max(0) as u64, 5)
}

pub fn byte(v: u8) -> u8 {
    ((v / 10) << 4) | (v % 10)
}

pub fn unbyte(b: u8) -> u8 {
    (b >> 4).min(9) * 10 + (b & 0x0F).min(9)
}

/// `YY MM DD HH MM` in BCD.
pub fn datetime(dt: &time::PrimitiveDateTime) -> [u8; 5] {
    [byte((dt.year() % 100) as u8), byte(u8::from(dt.month())), byte(dt.day()), byte(dt.hour()), byte(dt.minute())]
}

pub fn read_datetime(b: &[u8]) -> Option<time::PrimitiveDateTime> {
    let [y, mo, d, h, mi, ..] = b else { return None };
    let date = time::Date::from_calendar_date(2000 + i32::from(unbyte(*y)), time::Month::try_from(unbyte(*mo)).ok()?, unbyte(*d)).ok()?;
    Some(time::PrimitiveDateTime::new(date, time::Time::from_hms(unbyte(*h), unbyte(*mi), 0).ok()?))
}

/// CP866 for text that is known to be printable (the emulator's own strings).
/// Characters outside CP866 become '?', never an HTML reference.
pub fn cp866(s: &str) -> Vec<u8> {
    kkm_core::text::encode(s, kkm_core::text::Charset::Cp866)
        .unwrap_or_else(|_| s.chars().flat_map(|c| kkm_core::text::encode(&c.to_string(), kkm_core::text::Charset::Cp866).unwrap_or_else(|_| vec![b'?'])).collect())
}

/// CP866 for text from the shop: each character kept, mapped to its printable form, or
/// refused with the character named (issue 7).
pub fn cp866_strict(s: &str, code: &'static str, ru: &str, en: &str) -> Result<Vec<u8>, kkm_core::DriverError> {
    kkm_core::text::encode(s, kkm_core::text::Charset::Cp866)
        .map_err(|u| kkm_core::DriverError::Invalid(u.to_validation(code, ru, en)))
}

pub fn from_cp866(b: &[u8]) -> String {
    let end = b.iter().position(|c| *c == 0).unwrap_or(b.len());
    encoding_rs::IBM866.decode(&b[..end]).0.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bcd_roundtrip() {
        assert_eq!(encode(123_456, 5), vec![0x00, 0x00, 0x12, 0x34, 0x56]);
        assert_eq!(decode(&[0x00, 0x12, 0x34]), Some(1234));
        assert_eq!(decode(&[0x1A]), None);
        assert_eq!(encode(u64::MAX, 2), vec![0x99, 0x99]);
    }
}
