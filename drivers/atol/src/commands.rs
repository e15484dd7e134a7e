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

/// Tax type byte of EB (our mapping for the 2026 rates; see the spec).
pub fn tax_code(v: kkm_core::VatRate) -> u8 {
    use kkm_core::VatRate::*;
    match v {
        Vat22 => 1,
        Vat10 => 2,
        Vat22_122 => 3,
        Vat10_110 => 4,
        Vat0 => 5,
        NoVat => 6,
        Vat5 => 7,
        Vat7 => 8,
        Vat5_105 => 9,
        Vat7_107 => 10,
    }
}

pub fn tax_of(code: u8) -> Option<kkm_core::VatRate> {
    kkm_core::VatRate::ALL.into_iter().find(|v| tax_code(*v) == code)
}

pub fn answer_timeout(cmd: u8) -> Duration {
    match cmd {
        X_REPORT => Duration::from_secs(30),
        Z_REPORT | OPEN_SHIFT => Duration::from_secs(60),
        CLOSE_RECEIPT => Duration::from_secs(30),
        _ => Duration::from_secs(8),
    }
}
