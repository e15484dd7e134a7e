//! Check digits of ИНН and РНМ, and the "lost factory number" symptom.
//!
//! The РНМ's last six digits are a CRC-16/CCITT-FALSE of the first ten digits, the ИНН
//! and the ЗН, written in decimal. When a device's reported ЗН and ИНН do not produce
//! the check digits of its РНМ, either the ЗН was lost ("слетел ЗН"), the ИНН is wrong,
//! or the unit was registered under another number.

use crc::{Crc, CRC_16_IBM_3740};

const CRC16: Crc<u16> = Crc::<u16>::new(&CRC_16_IBM_3740);

const INN_WEIGHTS: [u32; 11] = [3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8];

fn digits(s: &str) -> Option<Vec<u32>> {
    s.chars().map(|c| c.to_digit(10)).collect()
}

fn check_digit(ds: &[u32], weights: &[u32]) -> u32 {
    let sum: u32 = ds.iter().zip(weights).map(|(d, w)| d * w).sum();
    sum % 11 % 10
}

/// Validates a 10-digit (organisation) or 12-digit (person) ИНН.
pub fn inn_is_valid(inn: &str) -> bool {
    let Some(d) = digits(inn.trim()) else { return false };
    match d.len() {
        10 => check_digit(&d[..9], &INN_WEIGHTS[2..]) == d[9],
        12 => check_digit(&d[..10], &INN_WEIGHTS[1..]) == d[10] && check_digit(&d[..11], &INN_WEIGHTS) == d[11],
        _ => false,
    }
}

/// The six check digits of a РНМ, from its first ten digits, the ИНН and the ЗН.
pub fn rnm_check_digits(rnm_prefix: &str, inn: &str, serial: &str) -> String {
    let text = format!("{:0>10}{:0>12}{:0>20}", rnm_prefix.trim(), inn.trim(), serial.trim());
    format!("{:06}", CRC16.checksum(text.as_bytes()))
}

/// Builds a full 16-digit РНМ from a 10-digit prefix (used by the emulators).
pub fn rnm_with_check(rnm_prefix: &str, inn: &str, serial: &str) -> String {
    format!("{:0>10}{}", rnm_prefix.trim(), rnm_check_digits(rnm_prefix, inn, serial))
}

/// Does the РНМ's check part agree with this ЗН and ИНН?
pub fn rnm_matches(rnm: &str, inn: &str, serial: &str) -> bool {
    let rnm = rnm.trim();
    let rnm = rnm.trim_start_matches('0');
    let rnm = format!("{rnm:0>16}");
    rnm.len() == 16 && rnm[10..] == rnm_check_digits(&rnm[..10], inn, serial)
}

/// An empty or all-zero factory number: the classic "слетел ЗН".
pub fn serial_is_lost(serial: &str) -> bool {
    serial.trim().chars().all(|c| c == '0' || c == ' ' || c == '\0')
}

/// The longest factory number: tag 1013 «заводской номер ККТ» is an ASCII string of at
/// most 20 characters (javapos_shtrih `TLVTags.java`, temoto/ru-nalog-go `tags.gen.go`),
/// and the РНМ check digits pad the ЗН to 20 digits (see [`rnm_check_digits`]).
pub const SERIAL_MAX_DIGITS: usize = 20;

/// Why a typed factory number cannot be a ЗН, if it cannot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SerialFormat {
    Ok,
    Empty,
    /// Letters, spaces or punctuation: a ЗН is digits only (every known series is, and
    /// the РНМ check digits are computed over its digits).
    NotDigits,
    TooLong,
}

/// Checks a factory number typed from the sticker: 1 to 20 digits.
pub fn serial_format(serial: &str) -> SerialFormat {
    let s = serial.trim();
    if s.is_empty() {
        SerialFormat::Empty
    } else if !s.chars().all(|c| c.is_ascii_digit()) {
        SerialFormat::NotDigits
    } else if s.len() > SERIAL_MAX_DIGITS {
        SerialFormat::TooLong
    } else {
        SerialFormat::Ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inn_check_digits() {
        assert!(inn_is_valid("7707083893")); // Сбербанк
        assert!(!inn_is_valid("7707083894"));
        assert!(inn_is_valid("500100732259"));
        assert!(!inn_is_valid("500100732250"));
        assert!(!inn_is_valid("12345"));
    }

    #[test]
    fn rnm_roundtrip() {
        let rnm = rnm_with_check("0000000001", "7707083893", "0000000045012345");
        assert_eq!(rnm.len(), 16);
        assert!(rnm_matches(&rnm, "7707083893", "0000000045012345"));
        assert!(!rnm_matches(&rnm, "7707083893", "0000000000000000"));
        assert!(serial_is_lost("0000000000000000"));
        assert!(serial_is_lost(""));
        assert!(!serial_is_lost("18001234"));
    }

    #[test]
    fn serial_formats() {
        assert_eq!(serial_format("18001234"), SerialFormat::Ok);
        assert_eq!(serial_format("0000000045001234"), SerialFormat::Ok);
        assert_eq!(serial_format("1800-1234"), SerialFormat::NotDigits);
        assert_eq!(serial_format("18OO1234"), SerialFormat::NotDigits);
        assert_eq!(serial_format("123456789012345678901"), SerialFormat::TooLong);
        assert_eq!(serial_format("  "), SerialFormat::Empty);
    }
}
