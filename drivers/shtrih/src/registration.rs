//! What the register was registered with: the ФФД version and the tax systems (СНО).
//!
//! Diagnostics show them so an engineer sees at a glance why a receipt with another
//! tax system is refused. Both are read with queries that print nothing:
//!
//! * Tax systems: the byte after the РНМ in FF09 «Запрос итогов последней фискализации
//!   (перерегистрации)»: date-time (5), ИНН (12), РНМ (20), then the tax-system bits
//!   (bit 0 ОСН … bit 5 ПСН), the same in the ФФД 1.05 and 1.1 layouts ([V117] FF09h;
//!   [JPOS] `command/FSReadFiscalization.java` reads `taxSystemCode` right after the
//!   20-character РНМ).
//! * ФФД version: tag 1209 «версия ФФД» of the latest registration report, read with
//!   FF0E «Запрос параметра открытия ФН»: system administrator's password (4), number
//!   of the registration report (1), tag (2, little-endian); the answer is that tag's
//!   TLV: tag (2 LE), length (2 LE), value ([V117] FF0Eh; [JPOS]
//!   `command/FSRequestFiscalizationTag.java`; tag 1209 is one byte, [JPOS]
//!   `TLVTags.java`). The report number is the count of registration reports done, the
//!   last byte of FF03 ([V117] FF03h; [PYS] `handlers/commands.py` 0xFF03 «Выполнено
//!   отчетов о перерегистрации»). Whether that count includes the first registration
//!   is not stated, so the driver asks for count + 1 first and falls back to count.
//!
//! A unit that refuses either query (or answers in a layout we do not know) gets
//! `None`: diagnostics then say «неизвестно».

use crate::codec::{Reader, Writer};
use kkm_core::{FfdVersion, TaxSystems};

/// Tag 1209 «версия ФФД».
pub const TAG_FFD_VERSION: u16 = 1209;
/// Offset of the tax-system byte in the FF09 answer (after the error byte).
const FF09_TAX_OFFSET: usize = 5 + 12 + 20;
/// The FN's answer when it has no such data: «Нет запрошенных данных» (unconfirmed for
/// FF0E: the code the emulator gives for a report or tag it does not hold).
pub const NO_DATA: u8 = 0x08;

/// The tax systems from an FF09 answer; `None` when it is too short or has bits no
/// tax system uses.
pub fn tax_systems_of_ff09(answer: &[u8]) -> Option<TaxSystems> {
    let b = *answer.get(FF09_TAX_OFFSET)?;
    (b & 0xC0 == 0).then_some(TaxSystems(b))
}

/// The FF0E request: password, report number, tag.
pub fn ff0e_request(sys_password: u32, report: u8, tag: u16) -> Vec<u8> {
    Writer::new().u32(sys_password).u8(report).u16(tag).done()
}

/// The ФФД version from an FF0E answer for tag 1209; `None` for another tag, a short
/// answer or a code no ФФД defines.
pub fn ffd_of_ff0e(answer: &[u8]) -> Option<FfdVersion> {
    let mut r = Reader::new(answer, "registration tag");
    let tag = r.u16().ok()?;
    let len = r.u16().ok()?;
    if tag != TAG_FFD_VERSION || len != 1 {
        return None;
    }
    FfdVersion::from_code(i64::from(r.u8().ok()?))
}

/// The emulator's FF0E answer for a unit registered once (report 1) with ФФД `ffd_code`
/// and tax systems `tax_mask`: tags 1209 and 1062 (one byte each), else [`NO_DATA`].
pub fn ff0e_answer(report: u8, tag: u16, ffd_code: u8, tax_mask: u8) -> Result<Vec<u8>, u8> {
    let value = match (report, tag) {
        (1, TAG_FFD_VERSION) => ffd_code,
        (1, 1062) => tax_mask,
        _ => return Err(NO_DATA),
    };
    Ok(Writer::new().u16(tag).u16(1).u8(value).done())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An FF09 answer in the ФФД 1.05 layout of [V117] FF09h: date-time, ИНН, РНМ,
    /// tax byte, work mode, ФД, ФП.
    fn ff09(tax: u8) -> Vec<u8> {
        let mut a = vec![24, 1, 15, 10, 30];
        a.extend_from_slice(b"7707083893  ");
        a.extend_from_slice(b"0000000001012345    ");
        a.extend_from_slice(&[tax, 0x00, 1, 0, 0, 0, 0x78, 0x56, 0x34, 0x12]);
        a
    }

    #[test]
    fn ff09_tax_byte_follows_the_rnm() {
        // Bit 0 ОСН, bit 2 УСН доход минус расход ([V117] FF09h).
        assert_eq!(tax_systems_of_ff09(&ff09(0x05)), Some(TaxSystems(0x05)));
        assert_eq!(tax_systems_of_ff09(&ff09(0x05)).unwrap().names_ru(), "ОСН, УСН доход минус расход");
        assert_eq!(tax_systems_of_ff09(&ff09(0x80)), None);
        assert_eq!(tax_systems_of_ff09(&ff09(0x02)[..37]), None);
    }

    #[test]
    fn ff0e_request_and_answer_vectors() {
        // pw 30, report 1, tag 1209 = 0x04B9 little-endian ([V117] FF0Eh).
        assert_eq!(ff0e_request(30, 1, TAG_FFD_VERSION), vec![30, 0, 0, 0, 1, 0xB9, 0x04]);
        // TLV: tag 1209, length 1, value 2 (ФФД 1.05).
        assert_eq!(ffd_of_ff0e(&[0xB9, 0x04, 0x01, 0x00, 0x02]), Some(FfdVersion::V1_05));
        assert_eq!(ffd_of_ff0e(&[0xB9, 0x04, 0x01, 0x00, 0x04]), Some(FfdVersion::V1_2));
        assert_eq!(ffd_of_ff0e(&[0xB9, 0x04, 0x01, 0x00, 0x09]), None);
        assert_eq!(ffd_of_ff0e(&[0x26, 0x04, 0x01, 0x00, 0x02]), None);
        assert_eq!(ffd_of_ff0e(&[0xB9, 0x04]), None);
        assert_eq!(ff0e_answer(1, TAG_FFD_VERSION, 2, 0x02), Ok(vec![0xB9, 0x04, 0x01, 0x00, 0x02]));
        assert_eq!(ff0e_answer(2, TAG_FFD_VERSION, 2, 0x02), Err(NO_DATA));
    }
}
