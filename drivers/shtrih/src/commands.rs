//! Command numbers and how long each may take.
//!
//! Layouts of requests and answers are described in `protocol-specs/shtrih-m.md`; the
//! driver builds and reads them with [`crate::codec::Writer`] and [`crate::codec::Reader`].

use std::time::Duration;

pub const SHORT_STATUS: u16 = 0x10;
pub const FULL_STATUS: u16 = 0x11;
pub const LONG_SERIAL: u16 = 0x0F;
pub const PRINT_STRING: u16 = 0x17;
pub const CASH_REGISTER: u16 = 0x1A;
pub const OPERATING_REGISTER: u16 = 0x1B;
pub const READ_TABLE: u16 = 0x1F;
pub const CUT: u16 = 0x25;
pub const OPEN_DRAWER: u16 = 0x28;
pub const X_REPORT: u16 = 0x40;
pub const Z_REPORT: u16 = 0x41;
pub const CASH_IN: u16 = 0x50;
pub const CASH_OUT: u16 = 0x51;
pub const CANCEL_RECEIPT: u16 = 0x88;
pub const REPEAT_DOCUMENT: u16 = 0x8C;
pub const CONTINUE_PRINT: u16 = 0xB0;
pub const OPEN_SHIFT: u16 = 0xE0;
pub const DEVICE_TYPE: u16 = 0xFC;
pub const FN_STATUS: u16 = 0xFF01;
pub const FN_SERIAL: u16 = 0xFF02;
pub const FN_EXPIRY: u16 = 0xFF03;
pub const FN_FIND_DOCUMENT: u16 = 0xFF0A;
pub const FN_SEND_TLV: u16 = 0xFF0C;
pub const FN_OFD_STATUS: u16 = 0xFF39;
pub const FN_SHIFT_PARAMS: u16 = 0xFF40;
pub const CLOSE_RECEIPT_V2: u16 = 0xFF45;
pub const OPERATION_V2: u16 = 0xFF46;

/// The VAT table: rows are rates, field 1 the rate in hundredths of a percent, field 2 its name.
pub const VAT_TABLE: u8 = 6;
pub const VAT_TABLE_ROWS: u16 = 10;

/// Cash registers (0x1A) we read. 241–243 are the vendor's; the per-payment registers
/// follow our reading of the register table: `SALES_BASE + 4 × payment + operation`,
/// operation 0 sale, 1 purchase, 2 sale return, 3 purchase return; payment 0 cash,
/// 1 electronic, 2 prepayment, 3 credit, 4 other.
pub const REG_CASH_IN_DRAWER: u8 = 241;
pub const REG_CASH_INS: u8 = 242;
pub const REG_CASH_OUTS: u8 = 243;
pub const REG_SALES_BASE: u8 = 193;
/// Operating registers (0x1B): receipts in the shift per operation, same order.
pub const OPREG_RECEIPTS_BASE: u8 = 144;
pub const OPREG_DOCUMENT_NUMBER: u8 = 152;

/// Answer timeouts from the vendor's driver: reports and shift commands print long.
pub fn answer_timeout(cmd: u16) -> Duration {
    match cmd {
        X_REPORT => Duration::from_secs(30),
        Z_REPORT => Duration::from_secs(65),
        OPEN_SHIFT => Duration::from_secs(35),
        CLOSE_RECEIPT_V2 => Duration::from_secs(30),
        _ => Duration::from_secs(10),
    }
}

/// The operation byte of FF46 and the operation index of the registers.
pub fn operation_index(op: kkm_core::Operation) -> u8 {
    use kkm_core::Operation::*;
    match op {
        Sale => 0,
        Purchase => 1,
        SaleReturn => 2,
        PurchaseReturn => 3,
    }
}

/// FF45 has 16 payment slots; ours go to 1 cash, 2 electronic, 14 prepayment,
/// 15 postpayment (credit), 16 counter-provision (other).
pub fn payment_slot(p: kkm_core::PaymentType) -> usize {
    use kkm_core::PaymentType::*;
    match p {
        Cash => 0,
        Electronic => 1,
        Prepayment => 13,
        Credit => 14,
        Other => 15,
    }
}

/// FN document types (FF0A).
pub fn document_kind(t: u8) -> kkm_core::DocumentKind {
    use kkm_core::DocumentKind::*;
    match t {
        1 | 11 => Registration,
        2 => ShiftOpen,
        3 | 4 => Receipt,
        5 => ShiftClose,
        6 => FnClose,
        21 => CalculationReport,
        31 | 41 => Correction,
        _ => Other,
    }
}

pub fn document_type(k: kkm_core::DocumentKind) -> u8 {
    use kkm_core::DocumentKind::*;
    match k {
        Registration => 1,
        ShiftOpen => 2,
        Receipt => 3,
        ShiftClose => 5,
        FnClose => 6,
        CalculationReport => 21,
        Correction => 31,
        Other => 0,
    }
}
