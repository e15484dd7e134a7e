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
pub const FN_REGISTRATION_TOTALS: u16 = 0xFF09;
pub const FN_FIND_DOCUMENT: u16 = 0xFF0A;
/// [V117] «Запрос параметра открытия ФН»: one tag of a registration report (see
/// [`crate::registration`]).
pub const FN_REGISTRATION_TAG: u16 = 0xFF0E;
/// [V117] "Запросить фискальный документ в TLV формате": admin pw, ФД (4) →
/// document type (2), length (2).
pub const FN_REQUEST_DOCUMENT_TLV: u16 = 0xFF3A;
/// [V117] "Чтение TLV фискального документа": admin pw → the next block of the TLV,
/// until error 08 (no more data), as [JPOS] `fsReadDocumentTLVToEnd` reads it.
pub const FN_READ_DOCUMENT_TLV: u16 = 0xFF3B;
pub const FN_SEND_TLV: u16 = 0xFF0C;
pub const FN_OFD_STATUS: u16 = 0xFF39;
pub const FN_SHIFT_PARAMS: u16 = 0xFF40;
pub const FN_START_SHIFT_OPEN: u16 = 0xFF41;
pub const FN_START_SHIFT_CLOSE: u16 = 0xFF42;
pub const CLOSE_RECEIPT_V2: u16 = 0xFF45;
pub const OPERATION_V2: u16 = 0xFF46;
pub const FN_SEND_OPERATION_TLV: u16 = 0xFF4D;
/// Classic receipt commands ([V117] 80h, 82h, 85h): older software and pyshtrih use them.
pub const SALE: u16 = 0x80;
pub const PURCHASE: u16 = 0x81;
pub const SALE_RETURN: u16 = 0x82;
pub const PURCHASE_RETURN: u16 = 0x83;
pub const CLOSE_RECEIPT: u16 = 0x85;
/// Other classic commands common in older software ([V117] 13h, 29h, 89h, 8Dh, FF3F).
pub const BEEP: u16 = 0x13;
pub const FEED: u16 = 0x29;
pub const SUBTOTAL: u16 = 0x89;
pub const OPEN_RECEIPT: u16 = 0x8D;
pub const FN_UNCONFIRMED_COUNT: u16 = 0xFF3F;

/// Model ids from "get device type" (0xFC) that decide the VAT code set of FF46.
/// 45: АЗУР-01Ф, ШТРИХ-СМАРТПОС-Ф, ШТРИХ-СМАРТПОС-МИНИ-Ф ([UPD]); 152: ШТРИХ-NANO-Ф
/// ([JPOS] `PrinterConst.PRINTER_MODEL_SHTRIH_NANO_F`).
pub const MODEL_AZUR: u8 = 45;
pub const MODEL_SHTRIH_NANO: u8 = 152;

/// The largest sum a 5-byte money field carries as the vendor documents it
/// ([V117] 50h/80h/85h: "0000000000…9999999999"). The field itself could hold 2^40-1;
/// the documented range is the narrower bound and the one we enforce.
pub const MAX_WIRE_SUM: i64 = 9_999_999_999;

/// The VAT table (table 6): rows are the tax groups the classic commands 80h/82h/85h
/// name by number 1…4 ([V117] 80h "Налог 1…4"). FF46 does not use it (see [`vat_code`]).
pub const VAT_TABLE: u8 = 6;

/// «Параметры ОФД» (table 19, row 1): field 1 the server (64 CHAR, an IP address or a
/// host name), field 2 the port (2BIN, 0…65535). Source: the vendor's «Общее
/// руководство по настройке ККТ» (re-star-ru/shtrih-m-driver docs, «Таблица 19
/// Параметры ОФД»); [JPOS] `MonitoringCommands.getFDOSettingsText` reads (19, 1, 1)
/// and (19, 1, 2) the same way.
pub const OFD_TABLE: u8 = 19;
pub const OFD_FIELD_SERVER: u8 = 1;
pub const OFD_FIELD_PORT: u8 = 2;
/// Table 19's server field is 64 characters wide.
pub const OFD_SERVER_WIDTH: usize = 64;

/// Cash registers (0x1A). 241 cash in drawer, 242 cash-ins, 243 cash-outs ([JPOS]
/// `CashRegister.java` F1–F3). Shift payments per payment type and operation
/// ([JPOS] `SMFiscalPrinterImpl.readDayPayments`, `CashRegister.java` C1–D0):
/// payment types 1…4 are `193 + operation + 4 × (type − 1)` (one byte); payment types
/// 5…16 are the two-byte K-registers `4144 + operation + 4 × (type − 5)`. 209 onwards
/// is VAT turnover, never a payment. Operation 0 sale, 1 purchase, 2 sale return,
/// 3 purchase return ([JPOS] `PrinterConst.SMFP_RECTYPE_*`).
pub const REG_CASH_IN_DRAWER: u16 = 241;
pub const REG_CASH_INS: u16 = 242;
pub const REG_CASH_OUTS: u16 = 243;
pub const REG_PAYMENTS_1_4: u16 = 193;
pub const REG_PAYMENTS_5_16: u16 = 4144;
/// Operating registers (0x1B): receipts in the shift per operation, same order.
pub const OPREG_RECEIPTS_BASE: u8 = 144;
pub const OPREG_DOCUMENT_NUMBER: u8 = 152;

/// The Shtrih payment type (1…16, the slots of FF45) of one of ours: 1 cash,
/// 2 electronic, 14 prepayment, 15 postpayment (credit), 16 counter-provision (other)
/// ([V117] FF45).
pub fn payment_type_number(p: kkm_core::PaymentType) -> u16 {
    payment_slot(p) as u16 + 1
}

/// The cash register holding the shift's payments of one payment type (1…16) for one
/// operation index (0…3). `None` outside those ranges.
pub fn payment_register(payment_type: u16, operation: u8) -> Option<u16> {
    let op = u16::from(operation);
    match (payment_type, op) {
        (_, 4..) => None,
        (1..=4, _) => Some(REG_PAYMENTS_1_4 + op + 4 * (payment_type - 1)),
        (5..=16, _) => Some(REG_PAYMENTS_5_16 + op + 4 * (payment_type - 5)),
        _ => None,
    }
}

/// The inverse of [`payment_register`]: (payment type 1…16, operation index 0…3).
pub fn register_payment(register: u16) -> Option<(u16, u8)> {
    match register {
        193..=208 => Some(((register - 193) / 4 + 1, ((register - 193) % 4) as u8)),
        4144..=4191 => Some(((register - 4144) / 4 + 5, ((register - 4144) % 4) as u8)),
        _ => None,
    }
}

/// Which VAT code set a unit uses in the FF46 tax byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VatCodeSet {
    /// Most Shtrih units, АЗУР-01Ф included: 22 % = 0xCB, 22/122 = 0xCC.
    Shtrih,
    /// ШТРИХ-NANO-Ф (model 152): 22 % = 0x90, 22/122 = 0xA0.
    Nano,
}

impl VatCodeSet {
    /// The set for a model id from "get device type" ([JPOS]
    /// `FiscalPrinterImpl.getVatCode`: Nano by model, everything else the main set).
    pub fn for_model(model_id: u8) -> VatCodeSet {
        if model_id == MODEL_SHTRIH_NANO {
            VatCodeSet::Nano
        } else {
            VatCodeSet::Shtrih
        }
    }
}

/// The FF46 tax byte: a code, not a table row ([JPOS] `FiscalPrinterImpl.getVatCodeShtrih`
/// and `getVatCodeShtrihNano` of 2026-02-18; [OPOS] and [PHP] agree on the single-bit
/// codes 0x01…0x20). The pre-2026 20 % codes 0x01 and 0x10 are never sent: the rate no
/// longer exists.
pub fn vat_code(rate: kkm_core::VatRate, set: VatCodeSet) -> u8 {
    use kkm_core::VatRate::*;
    match rate {
        Vat10 => 0x02,
        Vat0 => 0x04,
        NoVat => 0x08,
        Vat10_110 => 0x20,
        Vat5 => 0x81,
        Vat7 => 0x82,
        Vat5_105 => 0x84,
        Vat7_107 => 0x88,
        Vat22 => match set {
            VatCodeSet::Shtrih => 0xCB,
            VatCodeSet::Nano => 0x90,
        },
        Vat22_122 => match set {
            VatCodeSet::Shtrih => 0xCC,
            VatCodeSet::Nano => 0xA0,
        },
    }
}

/// The rate of an FF46 tax byte, or `None` for a byte the unit does not accept.
pub fn vat_from_code(code: u8, set: VatCodeSet) -> Option<kkm_core::VatRate> {
    kkm_core::VatRate::ALL.into_iter().find(|r| vat_code(*r, set) == code)
}

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
