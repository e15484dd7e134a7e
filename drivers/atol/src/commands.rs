//! ATOL command codes and the answer prefixes. Layouts are in `protocol-specs/atol.md`.

use std::time::Duration;

pub const STATUS: u8 = 0x3F;
pub const STATE_CODE: u8 = 0x45;
pub const ENTER_MODE: u8 = 0x56;
pub const LEAVE_MODE: u8 = 0x48;
pub const OPEN_SHIFT: u8 = 0x9A;
pub const OPEN_RECEIPT: u8 = 0x92;
pub const BEGIN_POSITION: u8 = 0xEA;
pub const POSITION: u8 = 0xEB;
pub const PAYMENT: u8 = 0x99;
pub const CLOSE_RECEIPT: u8 = 0x4A;
pub const CANCEL_RECEIPT: u8 = 0x59;
pub const CASH_IN: u8 = 0x49;
pub const CASH_OUT: u8 = 0x4F;
pub const X_REPORT: u8 = 0x67;
pub const Z_REPORT: u8 = 0x5A;
pub const CASH_IN_DRAWER: u8 = 0x4D;
pub const READ_REGISTER: u8 = 0x91;
pub const FN_REQUEST: u8 = 0xA4;
pub const DEVICE_TYPE: u8 = 0xA5;
pub const PRINT_STRING: u8 = 0x4C;
pub const REPRINT_LAST: u8 = 0x95;

/// A4 sub-commands.
pub const FN_SHIFT_STATE: u8 = 0x10;
pub const FN_OFD_STATUS: u8 = 0x20;
pub const FN_STATUS: u8 = 0x30;
pub const FN_SERIAL: u8 = 0x31;
pub const FN_EXPIRY: u8 = 0x32;
pub const FN_REGISTRATION: u8 = 0x40;
pub const FN_DOCUMENT: u8 = 0x45;
pub const FN_DOCUMENT_TLV: u8 = 0x46;

/// Write a requisite (tag + value); layout unconfirmed, see the spec.
pub const WRITE_REQUISITE: u8 = 0xE8;
/// Requisite tags (ФФД).
pub const TAG_CUSTOMER_CONTACT: u16 = 1008;
pub const TAG_CASHIER: u16 = 1021;
pub const TAG_TAX_SYSTEM: u16 = 1055;
pub const TAG_CASHIER_INN: u16 = 1203;

/// Registers of 0x91 (our layout, see the spec).
pub const REG_SUM: u8 = 1;
pub const REG_RECEIPTS: u8 = 2;
pub const REG_CASH_INS: u8 = 3;
pub const REG_CASH_OUTS: u8 = 4;

/// Modes of 0x56.
pub const MODE_REGISTRATION: u8 = 1;
pub const MODE_X: u8 = 2;
pub const MODE_Z: u8 = 3;

/// Answer prefixes: 'U' for most commands, 'D' for the status.
pub const ANSWER_U: u8 = 0x55;
pub const ANSWER_D: u8 = 0x44;

/// The receipt type byte of 0x92 for an operation.
pub fn receipt_type(op: kkm_core::Operation) -> u8 {
    use kkm_core::Operation::*;
    match op {
        Sale => 1,
        SaleReturn => 2,
        Purchase => 4,
        PurchaseReturn => 5,
    }
}

pub fn operation_of(t: u8) -> Option<kkm_core::Operation> {
    use kkm_core::Operation::*;
    Some(match t {
        1 => Sale,
        2 => SaleReturn,
        4 => Purchase,
        5 => PurchaseReturn,
        _ => return None,
    })
}

/// Payment type byte of 0x99.
pub fn payment_code(p: kkm_core::PaymentType) -> u8 {
    use kkm_core::PaymentType::*;
    match p {
        Cash => 1,
        Electronic => 2,
        Prepayment => 3,
        Credit => 4,
        Other => 5,
    }
}

/// Tax type byte of EB, in ATOL's own numbering (libfptr10.h `LIBFPTR_TAX_*`, Unact/kkm:
/// 1 18 %, 2 10 %, 3 18/118, 4 10/110, 5 0 %, 6 none, 7 20 %, 8 20/120, 9 5 %, 10 7 %,
/// 11 5/105, 12 7/107). 22 % and 22/122 exist in newer ATOL drivers, but no source at
/// hand gives their numbers: `None`, and the driver refuses such a receipt rather than
/// guess.
pub fn tax_code(v: kkm_core::VatRate) -> Option<u8> {
    use kkm_core::VatRate::*;
    match v {
        Vat10 => Some(2),
        Vat10_110 => Some(4),
        Vat0 => Some(5),
        NoVat => Some(6),
        Vat5 => Some(9),
        Vat7 => Some(10),
        Vat5_105 => Some(11),
        Vat7_107 => Some(12),
        Vat22 | Vat22_122 => None,
    }
}

pub fn tax_of(code: u8) -> Option<kkm_core::VatRate> {
    kkm_core::VatRate::ALL.into_iter().find(|v| tax_code(*v) == Some(code))
}

pub fn answer_timeout(cmd: u8) -> Duration {
    match cmd {
        X_REPORT => Duration::from_secs(30),
        Z_REPORT | OPEN_SHIFT => Duration::from_secs(60),
        CLOSE_RECEIPT => Duration::from_secs(30),
        _ => Duration::from_secs(8),
    }
}
