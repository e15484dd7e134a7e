//! Packed BCD (big-endian, two digits a byte) for money, quantities and dates, and
//! text in ATOL's code page: the encodings of the ATOL command layer.

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

/// Text in ATOL's own code page (the "external" code page of atol4j's
/// `ExternalCharsetEncoder`; KaznachejFA's `EncodeStringToKKTBytes` agrees). It is CP866
/// except: `№` is 0x24 and `$` is 0xFC (swapped), `’` is 0x27 like `'`, `€` is 0xF2, `■`
/// is 0xFF, and 0x7F, 0xF3..=0xFB, 0xFD, 0xFE hold nothing. Anything without a byte is
/// sent as `?`, never as an HTML escape.
pub fn atol_text(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut one = [0u8; 4];
    for ch in s.chars() {
        let b = match ch {
            '№' => 0x24,
            '$' => 0xFC,
            '’' => 0x27,
            '€' => 0xF2,
            '■' => 0xFF,
            c => {
                let (bytes, _, unmappable) = encoding_rs::IBM866.encode(c.encode_utf8(&mut one));
                match bytes.as_ref() {
                    [b] if !unmappable && !matches!(*b, 0x7F | 0xF2..=0xFE) => *b,
                    _ => b'?',
                }
            }
        };
        out.push(b);
    }
    out
}

/// ATOL's code page for text from the shop: each character kept, mapped to its
/// printable form («» — … to plain ones), or refused with the character named
/// (issue 7.11); never sent as `?` or an HTML reference.
pub fn atol_text_strict(s: &str, code: &'static str, ru: &str, en: &str) -> Result<Vec<u8>, kkm_core::DriverError> {
    use kkm_core::text::{printable, Charset, Unprintable};
    let refuse = |u: Unprintable| kkm_core::DriverError::Invalid(u.to_validation(code, ru, en));
    let p = printable(s, Charset::Cp866).map_err(refuse)?;
    let bytes = atol_text(&p);
    for (i, (c, b)) in p.chars().zip(&bytes).enumerate() {
        if *b == b'?' && c != '?' {
            return Err(refuse(Unprintable { ch: c, position: i + 1 }));
        }
    }
    Ok(bytes)
}

/// Decodes ATOL's code page (see [`atol_text`]); stops at a NUL, trims trailing spaces.
pub fn from_atol_text(b: &[u8]) -> String {
    let end = b.iter().position(|c| *c == 0).unwrap_or(b.len());
    let mut out = String::with_capacity(end);
    for &x in &b[..end] {
        match x {
            0x24 => out.push('№'),
            0xFC => out.push('$'),
            0xF2 => out.push('€'),
            0xFF => out.push('■'),
            0x7F | 0xF3..=0xFB | 0xFD | 0xFE => out.push('?'),
            x => out.push_str(&encoding_rs::IBM866.decode_without_bom_handling(&[x]).0),
        }
    }
    out.trim_end().to_string()
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

    #[test]
    fn atol_code_page_round_trips() {
        let s = "Чек № 5: 10$ — ёЁ";
        let b = atol_text(s);
        assert_eq!(&b[..5], &[0x97, 0xA5, 0xAA, 0x20, 0x24]);
        assert_eq!(from_atol_text(&b), "Чек № 5: 10$ ? ёЁ");
    }
}
