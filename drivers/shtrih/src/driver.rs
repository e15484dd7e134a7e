//! `ShtrihDriver`: the `FiscalDriver` for Shtrih-M family registers (Azur-01F).
//!
//! A receipt is FF46 per item (the first one opens the receipt), FF0C for the cashier
//! and the customer's contact, and FF45 to close it with the payments. Fiscal results
//! come from the FF45 answer; shift documents are read back from the ФН with FF0A.
//!
//! The tax byte of FF46 is the row of the device's VAT table (table 6). Rows differ
//! between units and firmware, so the driver reads the table once per connection and
//! maps our rates by the row names. It never assumes an index.

use crate::codec::{self, from_cp1251, read_fn_datetime, Reader, ShtrihFields, Writer};
use crate::commands::*;
use crate::errors::device_error;
use crate::link::{Link, Timing};
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
    /// (table row, rate), read from table 6 on first use per connection.
    vat_rows: Option<Vec<(u8, VatRate)>>,
}

fn proto(e: impl std::fmt::Display) -> DriverError {
    DriverError::Protocol(e.to_string())
}

/// Reads a rate from a VAT-table row name such as "НДС 22%" or "22/122".
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
            vat_rows: None,
        }
    }

    /// Operator (cashier) and administrator passwords; both default to 30.
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
            self.vat_rows = None;
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

    async fn vat_index(&mut self, rate: VatRate) -> DriverResult<u8> {
        if self.vat_rows.is_none() {
            let mut rows = Vec::new();
            for row in 1..=VAT_TABLE_ROWS {
                let params = self.admin().u8(VAT_TABLE).u16(row).u8(2).done();
                match self.call(READ_TABLE, params).await {
                    Ok(v) => {
                        if let Some(rate) = rate_from_label(&from_cp1251(&v)) {
                            rows.push((row as u8, rate));
                        }
                    }
                    Err(e @ DriverError::Device { .. }) if row > 1 => {
                        tracing::debug!("VAT table ends at row {row}: {e}");
                        break;
                    }
                    Err(e) => return Err(e),
                }
            }
            self.vat_rows = Some(rows);
        }
        self.vat_rows
            .as_ref()
            .and_then(|rows| rows.iter().find(|(_, r)| *r == rate))
            .map(|(i, _)| *i)
            .ok_or_else(|| {
                DriverError::Invalid(ValidationError {
                    code: "device.vat_rate_missing",
                    ru: format!("В таблице налогов ККТ нет ставки «{}»", rate.label_ru()),
                    en: format!("The device's VAT table has no rate {}", rate.json_name()),
                })
            })
    }

    async fn last_fiscal_result(&mut self) -> DriverResult<FiscalResult> {
        let n = self.fn_status().await?.last_document_number;
        let d = self.find_document(n).await?;
        Ok(FiscalResult { document_number: d.number, fiscal_sign: d.fiscal_sign, datetime: d.datetime, shift_number: d.shift_number })
    }

    async fn cash_register(&mut self, reg: u8) -> DriverResult<Money> {
        let params = self.pw().u8(reg).done();
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
            let tax = self.vat_index(item.vat).await?;
            let params = self
                .pw()
                .u8(receipt.operation.code())
                .quantity6(item.quantity)
                .money(item.price)
                .money(*line)
                .bytes(&[0xFF; 5])
                .u8(tax)
                .u8(item.department)
                .u8(item.payment_method.code())
                .u8(item.payment_object.code())
                .text(&item.name, 128)
                .done();
            self.call(OPERATION_V2, params).await?;
        }
        let mut tlvs: Vec<(u16, Vec<u8>)> = Vec::new();
        if let Some(c) = &receipt.cashier {
            tlvs.push((1021, encoding_rs::IBM866.encode(&c.name).0.into_owned()));
            if let Some(inn) = &c.inn {
                tlvs.push((1203, format!("{inn:<12}").into_bytes()));
            }
        }
        if let Some(contact) = receipt.customer.as_ref().and_then(|c| c.contact()) {
            tlvs.push((1008, encoding_rs::IBM866.encode(contact).0.into_owned()));
        }
        for (tag, mut value) in tlvs {
            value.truncate(200);
            let params = self.pw().u16(tag).u16(value.len() as u16).bytes(&value).done();
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
        let mut w = self.pw();
        for s in slots {
            w = w.money(s);
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
        let full = self.call(FULL_STATUS, self.pw().done()).await?;
        let mut r = Reader::new(&full, "full status");
        r.u8().map_err(proto)?;
        let fw = r.bytes(2).map_err(proto)?;
        let build = r.u16().map_err(proto)?;
        r.bytes(35).map_err(proto)?; // from the firmware date up to the INN (offset 40), see the spec
        let inn = r.uint(6).map_err(proto)?;
        let ls = self.call(LONG_SERIAL, self.pw().done()).await?;
        let mut r = Reader::new(&ls, "long serial");
        let serial = r.uint(7).map_err(proto)?;
        let rnm = r.uint(7).map_err(proto)?;
        let fns = self.call(FN_SERIAL, self.pw().done()).await?;
        Ok(DeviceIdentity {
            protocol: Some(ProtocolFamily::Shtrih),
            model_id,
            model_name,
            firmware: format!("{}.{} build {build}", fw[0] as char, fw[1] as char),
            serial: format!("{serial:016}"),
            rnm: if rnm == 0 { String::new() } else { format!("{rnm:016}") },
            inn: if inn >= 10_000_000_000 { format!("{inn:012}") } else { format!("{inn:010}") },
            fn_serial: Reader::new(&fns, "fn serial").ascii(16).map_err(proto)?,
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
        let mut r = Reader::new(&full, "full status");
        r.bytes(23).map_err(proto)?; // the date and time start at offset 23
        let d = r.bytes(6).map_err(proto)?;
        let clock = codec::datetime_from(d[2], d[1], d[0], d[3], d[4], d[5]);
        let sp = self.call(FN_SHIFT_PARAMS, self.pw().done()).await?;
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
        let d = self.call(FN_STATUS, self.pw().done()).await?;
        let mut r = Reader::new(&d, "FN status");
        let phase = FnPhase::from_code(r.u8().map_err(proto)?);
        let current_doc = r.u8().map_err(proto)?;
        r.u8().map_err(proto)?;
        let shift_open = r.u8().map_err(proto)? != 0;
        let warnings = r.u8().map_err(proto)?;
        read_fn_datetime(&mut r).map_err(proto)?;
        let serial = r.ascii(16).map_err(proto)?;
        let last = r.u32().map_err(proto)?;
        let e = self.call(FN_EXPIRY, self.pw().done()).await?;
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
        let d = self.call(FN_OFD_STATUS, self.pw().done()).await?;
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

    async fn find_document(&mut self, number: u32) -> DriverResult<FiscalDocument> {
        let d = self.call(FN_FIND_DOCUMENT, self.pw().u32(number).done()).await?;
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

    async fn shift_totals(&mut self) -> DriverResult<ShiftTotals> {
        let sp = self.call(FN_SHIFT_PARAMS, self.pw().done()).await?;
        let shift_number = u32::from(Reader::new(&sp, "shift params").bytes(3).map_err(proto).map(|b| u16::from_le_bytes([b[1], b[2]]))?);
        let mut by_operation = Vec::new();
        let mut receipt_count = 0;
        for op in [Operation::Sale, Operation::Purchase, Operation::SaleReturn, Operation::PurchaseReturn] {
            let oi = operation_index(op);
            receipt_count += self.operating_register(OPREG_RECEIPTS_BASE + oi).await?;
            for (pi, pay) in PaymentType::ALL.into_iter().enumerate() {
                let sum = self.cash_register(REG_SALES_BASE + 4 * pi as u8 + oi).await?;
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
        })
    }

    async fn open_shift(&mut self, _cashier: Option<&Cashier>) -> DriverResult<FiscalResult> {
        self.call(OPEN_SHIFT, self.pw().done()).await?;
        self.last_fiscal_result().await
    }

    async fn close_shift(&mut self, _cashier: Option<&Cashier>) -> DriverResult<FiscalResult> {
        self.call(Z_REPORT, self.admin().done()).await?;
        self.last_fiscal_result().await
    }

    async fn x_report(&mut self) -> DriverResult<()> {
        self.call(X_REPORT, self.admin().done()).await.map(|_| ())
    }

    async fn cash_in(&mut self, sum: Money) -> DriverResult<()> {
        self.call(CASH_IN, self.pw().money(sum).done()).await.map(|_| ())
    }

    async fn cash_out(&mut self, sum: Money) -> DriverResult<()> {
        self.call(CASH_OUT, self.pw().money(sum).done()).await.map(|_| ())
    }

    async fn fiscalize_with(&mut self, receipt: &Receipt, before_close: BeforeClose<'_>) -> DriverResult<FiscalResult> {
        let totals = receipt.validate(&self.profile.limits)?;
        // Map every rate before anything is sent, so a missing rate opens no receipt.
        for item in &receipt.items {
            self.vat_index(item.vat).await?;
        }
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
            let params = self.pw().u8(0x02).text_fixed(line, 40).done();
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
