//! `ShtrihDriver`: the `FiscalDriver` for Shtrih-M family registers (Azur-01F).
//!
//! A receipt is FF46 per item (the first one opens the receipt), FF0C for the cashier
//! and the customer's contact, and FF45 to close it with the payments. Fiscal results
//! come from the FF45 answer; shift documents are read back from the ФН with FF0A.
//!
//! The tax byte of FF46 is a fixed code (see [`crate::commands::vat_code`]), chosen from
//! the code set of the unit's model, which "get device type" (0xFC) reports once per
//! connection.
//!
//! Passwords follow the vendor's protocol description: the ФН commands (FF01, FF02,
//! FF03, FF09, FF0A, FF0C, FF39, FF40, FF41, FF42, FF45, FF4D) and the reports take the
//! administrator's password; FF46, the classic commands and status take the operator's.

use crate::codec::{self, from_cp1251, read_fn_datetime, Reader, ShtrihFields, Writer};
use crate::commands::*;
use crate::errors::device_error;
use crate::link::{Link, Timing};
use crate::registration;
use async_trait::async_trait;
use kkm_core::error::{DriverError, DriverResult};
use kkm_core::port::{self, PortSpec};
use kkm_core::*;
use std::time::Duration;

pub struct ShtrihDriver {
    port: PortSpec,
    baud: u32,
    profile: &'static ModelProfile,
    operator_password: u32,
    admin_password: u32,
    timing: Timing,
    link: Option<Link>,
    /// The model id from 0xFC, read on first use per connection.
    model_id: Option<u8>,
}

fn proto(e: impl std::fmt::Display) -> DriverError {
    DriverError::Protocol(e.to_string())
}

/// Reads a rate from a VAT-table row name such as "НДС 22%" or "22/122" (diagnostics
/// of table 6; FF46 does not use the table).
pub fn rate_from_label(label: &str) -> Option<VatRate> {
    let l: String = label.to_uppercase().chars().filter(|c| !c.is_whitespace()).collect();
    if l.contains("БЕЗ") || l.contains("NONE") {
        return Some(VatRate::NoVat);
    }
    for (frac, rate) in [
        ("22/122", VatRate::Vat22_122),
        ("10/110", VatRate::Vat10_110),
        ("5/105", VatRate::Vat5_105),
        ("7/107", VatRate::Vat7_107),
    ] {
        if l.contains(frac) {
            return Some(rate);
        }
    }
    let digits: String = l.chars().filter(|c| c.is_ascii_digit()).collect();
    match (digits.as_str(), l.contains('%')) {
        ("22", true) => Some(VatRate::Vat22),
        ("10", true) => Some(VatRate::Vat10),
        ("5", true) => Some(VatRate::Vat5),
        ("7", true) => Some(VatRate::Vat7),
        ("0", true) => Some(VatRate::Vat0),
        _ => None,
    }
}

impl ShtrihDriver {
    pub fn new(port: PortSpec, baud: Option<u32>, profile: &'static ModelProfile) -> ShtrihDriver {
        ShtrihDriver {
            port,
            baud: baud.unwrap_or(profile.default_baud),
            profile,
            operator_password: 30,
            admin_password: 30,
            timing: Timing::default(),
            link: None,
            model_id: None,
        }
    }

    /// Operator (cashier) and administrator passwords; both default to 30, the system
    /// administrator's factory password.
    pub fn with_passwords(mut self, operator: u32, admin: u32) -> ShtrihDriver {
        self.operator_password = operator;
        self.admin_password = admin;
        self
    }

    pub fn with_timing(mut self, timing: Timing) -> ShtrihDriver {
        self.timing = timing;
        self
    }

    fn pw(&self) -> Writer {
        Writer::new().u32(self.operator_password)
    }

    fn admin(&self) -> Writer {
        Writer::new().u32(self.admin_password)
    }

    /// Sends one command; a non-zero error byte becomes the explained device error.
    async fn call(&mut self, cmd: u16, params: Vec<u8>) -> DriverResult<Vec<u8>> {
        let frame = codec::request(cmd, &params).map_err(proto)?;
        if self.link.is_none() {
            let stream = port::open(&self.port, self.baud, Duration::from_secs(5)).await?;
            self.link = Some(Link::new(stream, self.timing));
            self.model_id = None;
        }
        let Some(link) = self.link.as_mut() else { return Err(DriverError::Protocol("no link".into())) };
        let result = link.transact(&frame, answer_timeout(cmd)).await;
        match result {
            Ok(a) if a.cmd != cmd => {
                self.link = None;
                Err(DriverError::Protocol(format!("answer to {:#06x} for command {cmd:#06x}", a.cmd)))
            }
            Ok(a) if a.error != 0 => Err(device_error(a.error)),
            Ok(a) => Ok(a.data),
            Err(e) => {
                if e.is_link() {
                    self.link = None;
                }
                Err(e)
            }
        }
    }

    /// The model id of the connected unit (0xFC), cached per connection.
    async fn model_id(&mut self) -> DriverResult<u8> {
        if let Some(m) = self.model_id {
            return Ok(m);
        }
        let t = self.call(DEVICE_TYPE, Vec::new()).await?;
        let b = Reader::new(&t, "device type").bytes(6).map_err(proto)?;
        self.model_id = Some(b[4]);
        Ok(b[4])
    }

    /// The FF46 tax byte for a rate on this unit.
    async fn vat_byte(&mut self, rate: VatRate) -> DriverResult<u8> {
        let set = VatCodeSet::for_model(self.model_id().await?);
        Ok(vat_code(rate, set))
    }

    async fn last_fiscal_result(&mut self) -> DriverResult<FiscalResult> {
        let n = self.fn_status().await?.last_document_number;
        let d = self.find_document(n).await?;
        Ok(FiscalResult { document_number: d.number, fiscal_sign: d.fiscal_sign, datetime: d.datetime, shift_number: d.shift_number })
    }

    /// Reads a cash register; numbers above 255 are K-registers sent in two bytes.
    async fn cash_register(&mut self, reg: u16) -> DriverResult<Money> {
        let params = cash_register_params(self.operator_password, reg);
        let data = self.call(CASH_REGISTER, params).await?;
        let mut r = Reader::new(&data, "cash register");
        r.u8().map_err(proto)?;
        Ok(Money(r.uint(6).map_err(proto)? as i64))
    }

    async fn operating_register(&mut self, reg: u8) -> DriverResult<u32> {
        let params = self.pw().u8(reg).done();
        let data = self.call(OPERATING_REGISTER, params).await?;
        let mut r = Reader::new(&data, "operating register");
        r.u8().map_err(proto)?;
        Ok(u32::from(r.u16().map_err(proto)?))
    }

    async fn add_items(&mut self, receipt: &Receipt, totals: &ReceiptTotals) -> DriverResult<()> {
        for (item, line) in receipt.items.iter().zip(&totals.lines) {
            let tax = self.vat_byte(item.vat).await?;
            let params = operation_v2_params(self.operator_password, receipt.operation, item, *line, tax)?;
            self.call(OPERATION_V2, params).await?;
            if let Some(unit) = item.measure_unit {
                // Tag 2108 bound to the operation just added ([V117] FF4D; [JPOS] sends
                // 2108 as a one-byte value after the operation).
                let params = self.admin().u16(2108).u16(1).u8(unit.code()).done();
                self.call(FN_SEND_OPERATION_TLV, params).await?;
            }
        }
        let mut tlvs = cashier_tlvs(receipt.cashier.as_ref())?;
        if let Some(contact) = receipt.customer.as_ref().and_then(|c| c.contact()) {
            tlvs.push((1008, tlv_text(contact, "receipt.customer_contact_unprintable", "Контакт покупателя", "Customer contact")?));
        }
        self.send_tlvs(tlvs).await
    }

    async fn send_tlvs(&mut self, tlvs: Vec<(u16, Vec<u8>)>) -> DriverResult<()> {
        for (tag, mut value) in tlvs {
            value.truncate(200);
            let params = self.admin().u16(tag).u16(value.len() as u16).bytes(&value).done();
            self.call(FN_SEND_TLV, params).await?;
        }
        Ok(())
    }

    async fn close_receipt(&mut self, receipt: &Receipt, before_close: BeforeClose<'_>) -> DriverResult<FiscalResult> {
        let mut slots = [Money::ZERO; 16];
        for p in &receipt.payments {
            let s = payment_slot(p.kind);
            slots[s] = slots[s].checked_add(p.sum).unwrap_or(slots[s]);
        }
        let mut w = self.admin();
        for s in slots {
            w = w.money(wire_sum(s)?);
        }
        w = w.u8(0); // rounding, kopecks
        for _ in 0..6 {
            w = w.money(Money::ZERO); // tax sums: the device computes them
        }
        let params = w.u8(receipt.tax_system.bit()).done();
        before_close()?;
        let data = self.call(CLOSE_RECEIPT_V2, params).await?;
        let mut r = Reader::new(&data, "close receipt");
        let _change = r.money().map_err(proto)?;
        let number = r.u32().map_err(proto)?;
        let sign = r.u32().map_err(proto)?;
        let datetime = if r.remaining() >= 5 { Some(read_fn_datetime(&mut r).map_err(proto)?) } else { None };
        let datetime = match datetime {
            Some(d) => d,
            None => self.find_document(number).await?.datetime,
        };
        Ok(FiscalResult { document_number: number, fiscal_sign: sign, datetime, shift_number: None })
    }
}

impl ShtrihDriver {
    /// The РНМ and the registered tax systems from the last registration totals (FF09,
    /// see [`crate::registration`]); if the unit refuses FF09, the РНМ from the long
    /// serial command (0x0F, not in [V117]) and no tax systems; if that is refused too,
    /// an empty РНМ.
    async fn registration_number(&mut self) -> DriverResult<(String, Option<TaxSystems>)> {
        match self.call(FN_REGISTRATION_TOTALS, self.admin().done()).await {
            Ok(d) => {
                let mut r = Reader::new(&d, "registration totals");
                r.bytes(5 + 12).map_err(proto)?;
                let rnm = r.ascii(20).map_err(proto)?.trim().to_string();
                return Ok((rnm, registration::tax_systems_of_ff09(&d)));
            }
            Err(DriverError::Device { raw, .. }) => tracing::debug!("FF09 refused ({raw:#04x}); trying 0x0F"),
            Err(e) => return Err(e),
        }
        match self.call(LONG_SERIAL, self.pw().done()).await {
            Ok(ls) => {
                let mut r = Reader::new(&ls, "long serial");
                r.uint(7).map_err(proto)?;
                let rnm = r.uint(7).map_err(proto)?;
                Ok((if rnm == 0 { String::new() } else { format!("{rnm:016}") }, None))
            }
            Err(DriverError::Device { .. }) => Ok((String::new(), None)),
            Err(e) => Err(e),
        }
    }

    /// The ФФД version of the latest registration report (FF03 for the count, FF0E for
    /// tag 1209; see [`crate::registration`]). `None` when the unit refuses or answers
    /// in a layout we do not know; only a lost link is an error.
    async fn registered_ffd(&mut self) -> DriverResult<Option<FfdVersion>> {
        let done = match self.call(FN_EXPIRY, self.admin().done()).await {
            Ok(e) => match e.get(4) {
                Some(n) => *n,
                None => return Ok(None),
            },
            Err(e) if e.is_link() => return Err(e),
            Err(_) => return Ok(None),
        };
        let mut tries = vec![done.saturating_add(1), done];
        tries.dedup();
        for n in tries.into_iter().filter(|n| *n >= 1) {
            let req = registration::ff0e_request(self.admin_password, n, registration::TAG_FFD_VERSION);
            match self.call(FN_REGISTRATION_TAG, req).await {
                Ok(a) => return Ok(registration::ffd_of_ff0e(&a)),
                Err(e) if e.is_link() => return Err(e),
                Err(DriverError::Device { .. }) => continue,
                Err(_) => return Ok(None),
            }
        }
        Ok(None)
    }
}

/// The fields of 0x11 the driver uses. Offsets are within the answer after the error
/// byte ([V117] 11h; [PYS] `handlers/commands.py` 0x11; [JPOS] `LongPrinterStatus`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FullStatus {
    pub firmware: String,
    pub clock: time::PrimitiveDateTime,
    /// The factory number: low 4 bytes at offset 30, and where present ([V117] 11h,
    /// answer of 50 bytes) the high word after the ИНН, at offset 46. `None` when the
    /// unit reports it as not entered (all FF).
    pub serial: Option<u64>,
    pub inn: String,
}

impl FullStatus {
    pub fn parse(data: &[u8]) -> Result<FullStatus, kkm_core::wire::Short> {
        let mut r = Reader::new(data, "full status");
        r.u8()?;
        let fw = r.bytes(2)?.to_vec();
        let build = r.u16()?;
        r.bytes(18)?; // firmware date … FP date: up to the clock at offset 23
        let d = r.bytes(6)?;
        let clock = codec::datetime_from(d[2], d[1], d[0], d[3], d[4], d[5]);
        r.u8()?;
        let low = r.u32()?;
        r.bytes(6)?; // last closed shift, free records, fiscalisations, remaining
        let inn_raw = r.uint(6)?;
        let high = if r.remaining() >= 2 { Some(r.u16()?) } else { None };
        let serial = match (low, high) {
            (0xFFFF_FFFF, _) => None,
            (low, Some(h)) if h != 0xFFFF => Some((u64::from(h) << 32) | u64::from(low)),
            (low, _) => Some(u64::from(low)),
        };
        let inn = if inn_raw == 0xFFFF_FFFF_FFFF {
            String::new()
        } else if inn_raw >= 10_000_000_000 {
            format!("{inn_raw:012}")
        } else {
            format!("{inn_raw:010}")
        };
        Ok(FullStatus { firmware: format!("{}.{} build {build}", fw[0] as char, fw[1] as char), clock, serial, inn })
    }
}

/// Parameters of 0x1A: password, then the register in one byte, or two for K-registers
/// above 255 ([V117] 1Ah; [JPOS] `ReadCashRegister.encode`).
pub fn cash_register_params(password: u32, reg: u16) -> Vec<u8> {
    let w = Writer::new().u32(password);
    if reg <= 0xFF {
        w.u8(reg as u8).done()
    } else {
        w.u16(reg).done()
    }
}

/// A sum for a 5-byte money field: refused, never wrapped, beyond the documented range.
pub fn wire_sum(m: Money) -> DriverResult<Money> {
    if (0..=MAX_WIRE_SUM).contains(&m.0) {
        Ok(m)
    } else {
        Err(DriverError::Invalid(ValidationError {
            code: "device.sum_out_of_range",
            ru: format!("Сумма {m} ₽ не помещается в поле команды ККТ (0…{} ₽)", Money(MAX_WIRE_SUM)),
            en: format!("The sum {m} does not fit the register's field (0…{})", Money(MAX_WIRE_SUM)),
        }))
    }
}

/// The parameters of FF46 for one item ([V117] FF46): operator password, operation
/// (tag 1054), quantity (6 bytes, millionths), price, amount, tax sum (FF×5: not given),
/// tax code, department, 1214, 1212, name (cp1251, at most 128 bytes).
pub fn operation_v2_params(password: u32, op: Operation, item: &Item, amount: Money, tax: u8) -> DriverResult<Vec<u8>> {
    let name = kkm_core::text::printable(&item.name, kkm_core::text::Charset::Cp1251)
        .map_err(|u| DriverError::Invalid(u.to_validation("receipt.item_name_unprintable", "Наименование", "Item name")))?;
    Ok(Writer::new()
        .u32(password)
        .u8(op.code())
        .quantity6(item.quantity)
        .money(wire_sum(item.price)?)
        .money(wire_sum(amount)?)
        .bytes(&[0xFF; 5])
        .u8(tax)
        .u8(item.department)
        .u8(item.payment_method.code())
        .u8(item.payment_object.code())
        .text(&name, 128)
        .done())
}

/// [V117] FF46 note 1: a line sum given in the command may differ from price × quantity
/// by one kopeck at most; the unit refuses more. Checked for all lines before the first
/// is sent, so a mismatch opens no receipt.
pub fn check_line_sums(receipt: &Receipt, totals: &ReceiptTotals) -> DriverResult<()> {
    for (i, (item, line)) in receipt.items.iter().zip(&totals.lines).enumerate() {
        let computed = item.quantity.times(item.price).unwrap_or(Money(i64::MAX));
        if line.0.abs_diff(computed.0) > 1 {
            let n = i + 1;
            return Err(DriverError::Invalid(ValidationError {
                code: "receipt.item_amount_mismatch",
                ru: format!("Позиция {n}: сумма {line} ₽ отличается от цены × количество ({computed} ₽) больше чем на копейку; укажите цену со скидкой"),
                en: format!("Item {n}: the amount {line} differs from price × quantity ({computed}) by more than one kopeck; give the discounted price"),
            }));
        }
    }
    Ok(())
}

/// A TLV string value in CP866 ([V117] FF0C; the project's captured TLVs), or the 422
/// naming the character that cannot be encoded.
fn tlv_text(s: &str, code: &'static str, ru: &str, en: &str) -> DriverResult<Vec<u8>> {
    kkm_core::text::encode(s, kkm_core::text::Charset::Cp866).map_err(|u| DriverError::Invalid(u.to_validation(code, ru, en)))
}

/// Tags 1021 (cashier) and 1203 (cashier's ИНН, 12 characters) for a cashier.
fn cashier_tlvs(cashier: Option<&Cashier>) -> DriverResult<Vec<(u16, Vec<u8>)>> {
    let mut tlvs = Vec::new();
    if let Some(c) = cashier {
        tlvs.push((1021, tlv_text(&c.name, "receipt.cashier_unprintable", "Имя кассира", "Cashier name")?));
        if let Some(inn) = &c.inn {
            tlvs.push((1203, format!("{inn:<12}").into_bytes()));
        }
    }
    Ok(tlvs)
}

#[async_trait]
impl FiscalDriver for ShtrihDriver {
    fn profile(&self) -> &ModelProfile {
        self.profile
    }

    async fn identity(&mut self) -> DriverResult<DeviceIdentity> {
        let t = self.call(DEVICE_TYPE, Vec::new()).await?;
        let mut r = Reader::new(&t, "device type");
        let b = r.bytes(6).map_err(proto)?;
        let (model_id, model_name) = (u16::from(b[4]), from_cp1251(r.rest()));
        self.model_id = Some(b[4]);
        let full = self.call(FULL_STATUS, self.pw().done()).await?;
        let status = FullStatus::parse(&full).map_err(proto)?;
        let fns = self.call(FN_SERIAL, self.admin().done()).await?;
        let fn_serial = Reader::new(&fns, "fn serial").ascii(16).map_err(proto)?;
        let (rnm, tax_systems) = self.registration_number().await?;
        let ffd_version = self.registered_ffd().await?;
        Ok(DeviceIdentity {
            protocol: Some(ProtocolFamily::Shtrih),
            model_id,
            model_name,
            firmware: status.firmware,
            serial: status.serial.map_or_else(|| "0".repeat(16), |s| format!("{s:016}")),
            rnm,
            inn: status.inn,
            fn_serial,
            ffd_version,
            tax_systems,
        })
    }

    async fn status(&mut self) -> DriverResult<DeviceStatus> {
        let s = self.call(SHORT_STATUS, self.pw().done()).await?;
        let mut r = Reader::new(&s, "short status");
        r.u8().map_err(proto)?;
        let flags = r.u16().map_err(proto)?;
        let mode = r.u8().map_err(proto)?;
        let submode = r.u8().map_err(proto)?;
        let full = self.call(FULL_STATUS, self.pw().done()).await?;
        let clock = FullStatus::parse(&full).map_err(proto)?.clock;
        let sp = self.call(FN_SHIFT_PARAMS, self.admin().done()).await?;
        let mut r = Reader::new(&sp, "shift params");
        let open = r.u8().map_err(proto)? != 0;
        let shift_number = u32::from(r.u16().map_err(proto)?);
        let shift = match mode & 0x0F {
            3 => ShiftState::Expired,
            4 => ShiftState::Closed,
            _ if open => ShiftState::Open,
            _ => ShiftState::Closed,
        };
        Ok(DeviceStatus {
            shift,
            shift_number,
            receipt_open: mode & 0x0F == 8,
            // The submode is the model-independent signal ([V117] appendix 1): 1 and 2
            // are "no paper", 3 is "paper back, waiting for B0". Flag bit 1 (receipt
            // roll) is meaningful only on models that document it, which АЗУР does
            // not, so it is not used.
            paper_present: !matches!(submode, 1 | 2),
            awaiting_continue: submode == 3,
            cover_open: flags & 0x0400 != 0,
            clock,
            mode_raw: mode,
            submode_raw: submode,
        })
    }

    async fn fn_status(&mut self) -> DriverResult<FnStatus> {
        let d = self.call(FN_STATUS, self.admin().done()).await?;
        let mut r = Reader::new(&d, "FN status");
        let phase = FnPhase::from_code(r.u8().map_err(proto)?);
        let current_doc = r.u8().map_err(proto)?;
        r.u8().map_err(proto)?;
        let shift_open = r.u8().map_err(proto)? != 0;
        let warnings = r.u8().map_err(proto)?;
        read_fn_datetime(&mut r).map_err(proto)?;
        let serial = r.ascii(16).map_err(proto)?;
        let last = r.u32().map_err(proto)?;
        let e = self.call(FN_EXPIRY, self.admin().done()).await?;
        let mut r = Reader::new(&e, "FN expiry");
        let b = r.bytes(3).map_err(proto)?;
        let until = codec::datetime_from(b[0], b[1], b[2], 0, 0, 0).date();
        Ok(FnStatus {
            serial,
            phase,
            last_document_number: last,
            shift_open,
            document_open: current_doc != 0,
            warnings,
            valid_until: Some(until),
        })
    }

    async fn ofd_status(&mut self) -> DriverResult<OfdStatus> {
        let d = self.call(FN_OFD_STATUS, self.admin().done()).await?;
        let mut r = Reader::new(&d, "OFD status");
        r.bytes(2).map_err(proto)?;
        let count = u32::from(r.u16().map_err(proto)?);
        let first = r.u32().map_err(proto)?;
        let at = read_fn_datetime(&mut r).map_err(proto)?;
        Ok(OfdStatus {
            unsent_count: count,
            first_unsent_number: (count > 0).then_some(first),
            first_unsent_at: (count > 0).then_some(at),
        })
    }

    async fn ofd_address(&mut self) -> DriverResult<OfdAddress> {
        let server = self.admin().u8(OFD_TABLE).u16(1).u8(OFD_FIELD_SERVER).done();
        let port = self.admin().u8(OFD_TABLE).u16(1).u8(OFD_FIELD_PORT).done();
        let host = from_cp1251(&self.call(READ_TABLE, server).await?).trim().to_string();
        let p = self.call(READ_TABLE, port).await?;
        let port = Reader::new(&p, "ОФД port").u16().map_err(proto)?;
        Ok(OfdAddress { host, port })
    }

    async fn receipt_content(&mut self, number: u32) -> DriverResult<kkm_core::tlv::ReceiptContent> {
        let head = self.call(FN_REQUEST_DOCUMENT_TLV, self.admin().u32(number).done()).await?;
        let mut r = Reader::new(&head, "document TLV header");
        let _doc_type = r.u16().map_err(proto)?;
        let len = usize::from(r.u16().map_err(proto)?);
        let mut data = Vec::with_capacity(len);
        // Bounded: one block per call, never more than the announced length.
        while data.len() < len {
            match self.call(FN_READ_DOCUMENT_TLV, self.admin().done()).await {
                Ok(block) if block.is_empty() => break,
                Ok(block) => data.extend_from_slice(&block),
                Err(DriverError::Device { raw: 0x08, .. }) => break,
                Err(e) => return Err(e),
            }
        }
        data.truncate(len);
        kkm_core::tlv::receipt_content(&data).map_err(proto)
    }

    async fn find_document(&mut self, number: u32) -> DriverResult<FiscalDocument> {
        let d = self.call(FN_FIND_DOCUMENT, self.admin().u32(number).done()).await?;
        let mut r = Reader::new(&d, "fiscal document");
        let kind = document_kind(r.u8().map_err(proto)?);
        let acked = r.u8().map_err(proto)? != 0;
        let datetime = read_fn_datetime(&mut r).map_err(proto)?;
        let number = r.u32().map_err(proto)?;
        let fiscal_sign = r.u32().map_err(proto)?;
        let (mut operation, mut total, mut shift_number) = (None, None, None);
        match kind {
            DocumentKind::Receipt => {
                operation = Operation::from_code(r.u8().map_err(proto)?);
                total = Some(r.money().map_err(proto)?);
            }
            DocumentKind::ShiftOpen | DocumentKind::ShiftClose => shift_number = Some(u32::from(r.u16().map_err(proto)?)),
            _ => {}
        }
        Ok(FiscalDocument { number, kind, datetime, fiscal_sign, operation, total, shift_number, ofd_acknowledged: acked, reference: None })
    }

    async fn cash_moves(&mut self) -> DriverResult<(Money, Money)> {
        // Registers 242 and 243 ([V117] register table; [JPOS] CashRegister.java).
        Ok((self.cash_register(REG_CASH_INS).await?, self.cash_register(REG_CASH_OUTS).await?))
    }

    async fn shift_totals(&mut self) -> DriverResult<ShiftTotals> {
        let sp = self.call(FN_SHIFT_PARAMS, self.admin().done()).await?;
        let shift_number = u32::from(Reader::new(&sp, "shift params").bytes(3).map_err(proto).map(|b| u16::from_le_bytes([b[1], b[2]]))?);
        let mut by_operation = Vec::new();
        let mut receipt_count = 0;
        let mut receipts_by_operation = Vec::new();
        for op in [Operation::Sale, Operation::Purchase, Operation::SaleReturn, Operation::PurchaseReturn] {
            let oi = operation_index(op);
            let count = self.operating_register(OPREG_RECEIPTS_BASE + oi).await?;
            receipt_count += count;
            receipts_by_operation.push(kkm_core::OperationCount { operation: op, count });
            for pay in PaymentType::ALL {
                let reg = payment_register(payment_type_number(pay), oi).ok_or_else(|| proto("payment register"))?;
                let sum = self.cash_register(reg).await?;
                if sum.0 != 0 {
                    by_operation.push(OperationTotals { operation: op, payment: pay, sum });
                }
            }
        }
        Ok(ShiftTotals {
            shift_number,
            cash_in_drawer: self.cash_register(REG_CASH_IN_DRAWER).await?,
            cash_ins: self.cash_register(REG_CASH_INS).await?,
            cash_outs: self.cash_register(REG_CASH_OUTS).await?,
            by_operation,
            receipt_count,
            receipts_by_operation,
            opened_at: None,
        })
    }

    async fn open_shift(&mut self, cashier: Option<&Cashier>) -> DriverResult<FiscalResult> {
        // With a cashier: FF41 starts the shift document, FF0C adds 1021/1203, E0 makes
        // it ([V117] FF41, FF0C, E0; [JPOS] `beginFiscalDay` does the same).
        let tlvs = cashier_tlvs(cashier)?;
        if !tlvs.is_empty() {
            self.call(FN_START_SHIFT_OPEN, self.admin().done()).await?;
            self.send_tlvs(tlvs).await?;
        }
        self.call(OPEN_SHIFT, self.pw().done()).await?;
        self.last_fiscal_result().await
    }

    async fn close_shift(&mut self, cashier: Option<&Cashier>) -> DriverResult<FiscalResult> {
        // FF42, FF0C, then the Z-report ([V117] FF42; [JPOS] `printZReport`).
        let tlvs = cashier_tlvs(cashier)?;
        if !tlvs.is_empty() {
            self.call(FN_START_SHIFT_CLOSE, self.admin().done()).await?;
            self.send_tlvs(tlvs).await?;
        }
        self.call(Z_REPORT, self.admin().done()).await?;
        self.last_fiscal_result().await
    }

    async fn x_report(&mut self) -> DriverResult<()> {
        self.call(X_REPORT, self.admin().done()).await.map(|_| ())
    }

    async fn cash_in(&mut self, sum: Money) -> DriverResult<()> {
        kkm_core::check_sum(sum, &self.profile.limits)?;
        self.call(CASH_IN, self.pw().money(wire_sum(sum)?).done()).await.map(|_| ())
    }

    async fn cash_out(&mut self, sum: Money) -> DriverResult<()> {
        kkm_core::check_sum(sum, &self.profile.limits)?;
        self.call(CASH_OUT, self.pw().money(wire_sum(sum)?).done()).await.map(|_| ())
    }

    async fn fiscalize_with(&mut self, receipt: &Receipt, before_close: BeforeClose<'_>) -> DriverResult<FiscalResult> {
        let totals = receipt.validate(&self.profile.limits)?;
        check_line_sums(receipt, &totals)?;
        // Learn the unit's VAT code set before anything that opens a receipt is sent.
        self.model_id().await?;
        let outcome = match self.add_items(receipt, &totals).await {
            Ok(()) => self.close_receipt(receipt, before_close).await,
            Err(e) => Err(e),
        };
        if let Err(e) = &outcome {
            // A device refusal leaves a half-built receipt: cancel it. After a link
            // error the outcome is unknown and the caller reconciles.
            if matches!(e, DriverError::Device { .. }) {
                let _ = self.cancel_receipt().await;
            }
        }
        outcome
    }

    async fn cancel_receipt(&mut self) -> DriverResult<()> {
        match self.call(CANCEL_RECEIPT, self.pw().done()).await {
            Ok(_) => Ok(()),
            Err(DriverError::Device { raw, .. }) if matches!(raw, 0x55 | 0x73 | 0x3D | 0x4E | 0x16) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn print_last_copy(&mut self) -> DriverResult<()> {
        let status = self.status().await?;
        if status.awaiting_continue {
            self.continue_print().await
        } else {
            self.call(REPEAT_DOCUMENT, self.pw().done()).await.map(|_| ())
        }
    }

    async fn continue_print(&mut self) -> DriverResult<()> {
        self.call(CONTINUE_PRINT, self.pw().done()).await.map(|_| ())
    }

    async fn print_text(&mut self, lines: &[String]) -> DriverResult<()> {
        for line in lines {
            let printable = kkm_core::text::printable(line, kkm_core::text::Charset::Cp1251)
                .map_err(|u| DriverError::Invalid(u.to_validation("print.text_unprintable", "Текст", "Text")))?;
            let params = self.pw().u8(0x02).text_fixed(&printable, 40).done();
            self.call(PRINT_STRING, params).await?;
        }
        Ok(())
    }

    async fn open_drawer(&mut self) -> DriverResult<()> {
        self.call(OPEN_DRAWER, self.pw().u8(0).done()).await.map(|_| ())
    }

    async fn disconnect(&mut self) {
        self.link = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vat_labels() {
        assert_eq!(rate_from_label("НДС 22%"), Some(VatRate::Vat22));
        assert_eq!(rate_from_label("НДС 22/122"), Some(VatRate::Vat22_122));
        assert_eq!(rate_from_label("БЕЗ НДС"), Some(VatRate::NoVat));
        assert_eq!(rate_from_label("НДС 0%"), Some(VatRate::Vat0));
        assert_eq!(rate_from_label("НДС 5%"), Some(VatRate::Vat5));
        assert_eq!(rate_from_label(""), None);
    }
}
