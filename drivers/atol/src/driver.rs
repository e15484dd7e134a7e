//! `AtolDriver`: the `FiscalDriver` for ATOL-protocol registers (Neva-01-F profile).
//!
//! A receipt is `92` (open), `EA`+`EB` per item, `99` per payment and `4A` (close), all
//! in registration mode (mode 1, entered with `56`). Reports need their own modes (2 for
//! X, 3 for Z). The driver remembers the mode it set and re-enters it when the device
//! says "not in this mode" (after a power cut, for instance).

use crate::commands::*;
use crate::{answers, bcd};
use crate::errors::{device_error, SHIFT_CLOSED};
use crate::link::V3Link;
use crate::link_v2::V2Link;
use async_trait::async_trait;
use kkm_core::error::{DriverError, DriverResult};
use kkm_core::receipt::ValidationError;
use kkm_core::port::{self, PortSpec};
use kkm_core::wire::Cursor;
use kkm_core::*;
use std::time::Duration;

/// Which ATOL link layer to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkVersion {
    V3,
    V2,
}

enum Link {
    V3(V3Link),
    V2(V2Link),
}

impl Link {
    async fn task(&mut self, task: &[u8], wait: Duration) -> DriverResult<Vec<u8>> {
        match self {
            Link::V3(l) => l.task(task, wait).await,
            Link::V2(l) => l.task(task, wait).await,
        }
    }
}

pub struct AtolDriver {
    port: PortSpec,
    version: LinkVersion,
    baud: u32,
    profile: &'static ModelProfile,
    /// Mode password (default 30), sent as 4 BCD bytes.
    password: u32,
    link: Option<Link>,
    mode: Option<u8>,
}

fn bcd_field(c: &mut Cursor, n: usize) -> DriverResult<u64> {
    let b = c.bytes(n)?;
    bcd::decode(b).ok_or_else(|| DriverError::Protocol("a BCD field holds a non-digit".into()))
}

/// The fields of an answer, or the device's error. Most answers are `55 error fields…`;
/// the status answers `44 ('D') fields…`; the device type answers `error fields…` with
/// no `55` (atol4j `DeviceTypeRequest`, multimag `requestDeviceType`, KaznachejFA); the
/// cash in drawer echoes its command, `4D sum…` (atol4j `CashRequest`).
pub fn answer_fields(cmd: u8, answer: &[u8]) -> DriverResult<Vec<u8>> {
    match (cmd, answer) {
        (DEVICE_TYPE, [0, rest @ ..]) => Ok(rest.to_vec()),
        (DEVICE_TYPE, [code, ..]) => Err(device_error(*code)),
        (CASH_IN_DRAWER, [CASH_IN_DRAWER, rest @ ..]) => Ok(rest.to_vec()),
        (STATUS, [ANSWER_D, rest @ ..]) => Ok(rest.to_vec()),
        (_, [ANSWER_U, 0, rest @ ..]) => Ok(rest.to_vec()),
        (_, [ANSWER_U, code, ..]) => Err(device_error(*code)),
        _ => Err(DriverError::Protocol(format!("unexpected answer to {cmd:#04x}"))),
    }
}

/// Refuses what has no confirmed ATOL tax-type code (22 % and 22/122) before anything
/// is sent; see the spec's VAT table.
fn tax_codes(receipt: &Receipt) -> DriverResult<Vec<u8>> {
    receipt
        .items
        .iter()
        .map(|item| {
            tax_code(item.vat).ok_or_else(|| {
                DriverError::Invalid(ValidationError {
                    code: "receipt.vat_rate_unconfirmed",
                    ru: format!(
                        "Для ставки НДС {} не подтверждён код налога в протоколе АТОЛ; чек не отправлен в ККТ. Обновите агент, когда код будет подтверждён.",
                        item.vat.label_ru()
                    ),
                    en: format!(
                        "VAT rate {} has no confirmed ATOL tax-type code; the receipt was not sent to the device.",
                        item.vat.label_ru()
                    ),
                })
            })
        })
        .collect()
}

impl AtolDriver {
    pub fn new(port: PortSpec, baud: Option<u32>, profile: &'static ModelProfile) -> AtolDriver {
        AtolDriver {
            port,
            version: LinkVersion::V3,
            baud: baud.unwrap_or(profile.default_baud),
            profile,
            password: 30,
            link: None,
            mode: None,
        }
    }

    pub fn with_link(mut self, version: LinkVersion) -> AtolDriver {
        self.version = version;
        self
    }

    pub fn with_password(mut self, password: u32) -> AtolDriver {
        self.password = password;
        self
    }

    /// Runs one command; returns the answer fields after `U 00` (or after `D`).
    async fn call(&mut self, cmd: u8, params: &[u8]) -> DriverResult<Vec<u8>> {
        if self.link.is_none() {
            let stream = port::open(&self.port, self.baud, Duration::from_secs(5)).await?;
            self.link = Some(match self.version {
                LinkVersion::V3 => {
                    let mut link = V3Link::new(stream);
                    // Clear tasks left from an earlier connection; recovery uses the ФН instead.
                    let _ = link.abort(Duration::from_millis(800)).await?;
                    Link::V3(link)
                }
                LinkVersion::V2 => Link::V2(V2Link::new(stream)),
            });
            self.mode = None;
        }
        let Some(link) = self.link.as_mut() else { return Err(DriverError::Protocol("no link".into())) };
        let mut task = vec![0x00, 0x00, cmd];
        task.extend_from_slice(params);
        let answer = match link.task(&task, answer_timeout(cmd)).await {
            Ok(a) => a,
            Err(e) => {
                if e.is_link() {
                    self.link = None;
                    self.mode = None;
                }
                return Err(e);
            }
        };
        answer_fields(cmd, &answer)
    }

    async fn enter_mode(&mut self, mode: u8) -> DriverResult<()> {
        if self.mode == Some(mode) {
            return Ok(());
        }
        let _ = self.call(LEAVE_MODE, &[]).await;
        let mut p = vec![mode];
        p.extend_from_slice(&bcd::encode(u64::from(self.password), 4));
        self.call(ENTER_MODE, &p).await?;
        self.mode = Some(mode);
        Ok(())
    }

    /// Runs `cmd` in `mode`, re-entering the mode once if the device lost it. A command
    /// refused for its mode in a closed shift is reported as "shift closed".
    async fn in_mode(&mut self, mode: u8, cmd: u8, params: &[u8]) -> DriverResult<Vec<u8>> {
        self.enter_mode(mode).await?;
        match self.call(cmd, params).await {
            Err(DriverError::Device { raw: 0x66, .. }) => {
                self.mode = None;
                self.enter_mode(mode).await?;
                match self.call(cmd, params).await {
                    Err(e @ DriverError::Device { raw: 0x66, .. }) => {
                        let st = self.status().await?;
                        if st.shift == ShiftState::Closed {
                            Err(DriverError::Device { family: ProtocolFamily::Atol, raw: 0x66, info: SHIFT_CLOSED })
                        } else {
                            Err(e)
                        }
                    }
                    other => other,
                }
            }
            other => other,
        }
    }

    async fn fn_request(&mut self, sub: u8, params: &[u8]) -> DriverResult<Vec<u8>> {
        let mut p = vec![sub];
        p.extend_from_slice(params);
        self.call(FN_REQUEST, &p).await
    }

    /// The ФН's last document: its number from `A4 30`, its record read as TLV.
    async fn last_fiscal_result(&mut self) -> DriverResult<FiscalResult> {
        let n = answers::fn_status(&self.fn_request(FN_STATUS, &[]).await?)?.last_document_number;
        let d = self.read_document(n).await?;
        Ok(FiscalResult { document_number: d.number, fiscal_sign: d.fiscal_sign, datetime: d.datetime, shift_number: d.shift_number })
    }

    /// `A4 45 number` starts a TLV read of the document; `A4 46` returns its records one
    /// by one until the device answers "no more data" (0xDA), as Unact/kkm `cheque_data`
    /// reads it. The `A4 45` answer's layout is unconfirmed: its document type is used
    /// when present, otherwise the kind is told from the records.
    async fn read_document(&mut self, number: u32) -> DriverResult<FiscalDocument> {
        let header = answers::document_header(&self.fn_request(FN_DOCUMENT, &number.to_le_bytes()).await?).ok();
        let mut records = Vec::new();
        while records.len() < 1024 {
            match self.fn_request(FN_DOCUMENT_TLV, &[]).await {
                Ok(r) if r.is_empty() => break,
                Ok(r) => records.push(r),
                Err(DriverError::Device { raw: 0xDA, .. }) => break,
                Err(e) => return Err(e),
            }
        }
        answers::document_from_tlv(header.map(|(t, _)| t), &records)
    }

    /// The TLV records of a document, as one block (see [`Self::read_document`]).
    async fn document_tlv(&mut self, number: u32) -> DriverResult<Vec<u8>> {
        self.fn_request(FN_DOCUMENT, &number.to_le_bytes()).await?;
        let mut data = Vec::new();
        for _ in 0..1024 {
            match self.fn_request(FN_DOCUMENT_TLV, &[]).await {
                Ok(r) if r.is_empty() => break,
                Ok(r) => data.extend(r),
                Err(DriverError::Device { raw: 0xDA, .. }) => break,
                Err(e) => return Err(e),
            }
        }
        Ok(data)
    }

    /// Writes one requisite (tag + value) with `E8`. The layout is unconfirmed (spec §3).
    async fn write_requisite(&mut self, tag: u16, value: &[u8]) -> DriverResult<()> {
        let mut p = vec![0x01, 0x01, 0x00];
        p.extend(answers::encode_tlv(tag, value));
        self.in_mode(MODE_REGISTRATION, WRITE_REQUISITE, &p).await.map(|_| ())
    }

    async fn register(&mut self, reg: u8, p1: u8, p2: u8, len: usize) -> DriverResult<Money> {
        let d = self.call(READ_REGISTER, &[reg, p1, p2]).await?;
        Ok(Money(bcd_field(&mut Cursor::new(&d, "register"), len)? as i64))
    }

    async fn build_receipt(&mut self, receipt: &Receipt, totals: &ReceiptTotals, before_close: BeforeClose<'_>) -> DriverResult<FiscalResult> {
        let codes = tax_codes(receipt)?;
        // The cashier before the receipt is opened, the other requisites after it
        // (the order of Unact/kkm `open_cheque_by_type` and `print_cheque_sell`).
        if let Some(cashier) = &receipt.cashier {
            self.write_requisite(TAG_CASHIER, &bcd::atol_text_strict(&cashier.name, "receipt.cashier_unprintable", "Кассир", "Cashier")?).await?;
            if let Some(inn) = cashier.inn.as_deref().filter(|i| !i.trim().is_empty()) {
                let mut v = inn.trim().as_bytes().to_vec();
                v.resize(12, b' ');
                self.write_requisite(TAG_CASHIER_INN, &v).await?;
            }
        }
        self.in_mode(MODE_REGISTRATION, OPEN_RECEIPT, &[0, receipt_type(receipt.operation)]).await?;
        self.write_requisite(TAG_TAX_SYSTEM, &[receipt.tax_system.bit()]).await?;
        if let Some(contact) = receipt.customer.as_ref().and_then(|c| c.contact()) {
            self.write_requisite(TAG_CUSTOMER_CONTACT, &bcd::atol_text_strict(contact, "receipt.contact_unprintable", "Контакт покупателя", "Customer contact")?).await?;
        }
        for ((item, line), code) in receipt.items.iter().zip(&totals.lines).zip(codes) {
            self.call(BEGIN_POSITION, &[]).await?;
            let mut p = vec![0u8];
            p.extend(bcd::money(item.price, 7));
            p.extend(bcd::quantity(item.quantity));
            p.extend(bcd::money(*line, 7));
            p.push(code);
            p.extend(bcd::money(item.vat.tax_in(*line), 7));
            p.push(item.department);
            p.push(item.payment_object.code());
            p.push(item.payment_method.code());
            p.push(0);
            p.extend(bcd::money(Money::ZERO, 7));
            p.extend([0, 0]);
            let mut name = bcd::atol_text_strict(&item.name, "receipt.item_name_unprintable", "Наименование", "Item name")?;
            name.truncate(128);
            p.extend(name);
            self.call(POSITION, &p).await?;
        }
        for pay in &receipt.payments {
            let mut p = vec![0, payment_code(pay.kind)];
            p.extend(bcd::money(pay.sum, 5));
            self.call(PAYMENT, &p).await?;
        }
        // Close: payment type 1..5 (atol4j `CloseBillCommand`), sum 0 = as paid. The
        // answer is a plain result; the ФД and ФП are read from the ФН afterwards.
        let mut p = vec![0, payment_code(PaymentType::Cash)];
        p.extend(bcd::money(Money::ZERO, 5));
        before_close()?;
        self.call(CLOSE_RECEIPT, &p).await?;
        // The receipt is fiscalised now. A failure to read it back must not look like a
        // refusal: it is reported as "outcome unknown", and the queue asks the ФН.
        self.last_fiscal_result()
            .await
            .map_err(|e| DriverError::Protocol(format!("the receipt was closed, but reading its ФД back failed: {e}")))
    }
}

#[async_trait]
impl FiscalDriver for AtolDriver {
    fn profile(&self) -> &ModelProfile {
        self.profile
    }

    async fn identity(&mut self) -> DriverResult<DeviceIdentity> {
        let t = answers::device_type(&self.call(DEVICE_TYPE, &[]).await?)?;
        let model_id = u16::from(t.model);
        let v = t.version;
        let version = format!("{}.{}.{}", bcd::unbyte(v[0]), bcd::unbyte(v[1]), bcd::decode(&v[3..5]).unwrap_or(0));
        let name = t.name;
        let s = self.call(STATUS, &[]).await?;
        let mut c = Cursor::new(&s, "status");
        c.bytes(9)?;
        let serial = bcd_field(&mut c, 4)?;
        let reg = self.fn_request(FN_REGISTRATION, &[]).await?;
        let mut c = Cursor::new(&reg, "registration");
        let rnm = c.ascii(20)?;
        let inn = c.ascii(12)?;
        let fns = self.fn_request(FN_SERIAL, &[]).await?;
        Ok(DeviceIdentity {
            protocol: Some(ProtocolFamily::Atol),
            model_id,
            model_name: name,
            firmware: version,
            serial: format!("{serial:08}"),
            rnm,
            inn,
            fn_serial: Cursor::new(&fns, "fn serial").ascii(16)?,
            // No independent source gives an ATOL 3.x wire read of tags 1209 and 1062
            // (protocol-specs/atol.md «Registration parameters»): not read.
            ffd_version: None,
            tax_systems: None,
        })
    }

    async fn status(&mut self) -> DriverResult<DeviceStatus> {
        let s = self.call(STATUS, &[]).await?;
        let mut c = Cursor::new(&s, "status");
        c.bytes(2)?;
        let d = c.bytes(6)?;
        let clock = time::Date::from_calendar_date(
            2000 + i32::from(bcd::unbyte(d[0])),
            time::Month::try_from(bcd::unbyte(d[1])).unwrap_or(time::Month::January),
            bcd::unbyte(d[2]).max(1),
        )
        .ok()
        .and_then(|date| time::Time::from_hms(bcd::unbyte(d[3]), bcd::unbyte(d[4]), bcd::unbyte(d[5])).ok().map(|t| time::PrimitiveDateTime::new(date, t)))
        .unwrap_or(time::macros::datetime!(2000-01-01 0:00));
        let flags = c.u8()?;
        c.bytes(4 + 1 + 2)?;
        let mode = c.u8()?;
        c.bytes(2)?;
        let shift_number = bcd_field(&mut c, 2)? as u32;
        let receipt_state = c.u8()?;
        let shift = answers::shift_state(&self.fn_request(FN_SHIFT_STATE, &[]).await?)?;
        Ok(DeviceStatus {
            shift,
            shift_number,
            receipt_open: receipt_state != 0,
            paper_present: flags & 0x08 != 0,
            // ATOL units finish an interrupted print by themselves (unconfirmed).
            awaiting_continue: false,
            cover_open: flags & 0x20 != 0,
            clock,
            mode_raw: mode & 0x0F,
            submode_raw: mode >> 4,
        })
    }

    async fn fn_status(&mut self) -> DriverResult<FnStatus> {
        let a = answers::fn_status(&self.fn_request(FN_STATUS, &[]).await?)?;
        let valid_until = answers::fn_expiry(&self.fn_request(FN_EXPIRY, &[]).await?)?;
        Ok(FnStatus {
            serial: a.serial,
            phase: FnPhase::from_code(a.phase),
            last_document_number: a.last_document_number,
            shift_open: a.shift_open,
            document_open: a.current_document != 0,
            warnings: a.warnings,
            valid_until,
        })
    }

    async fn ofd_status(&mut self) -> DriverResult<OfdStatus> {
        answers::ofd_status(&self.fn_request(FN_OFD_STATUS, &[]).await?)
    }

    async fn receipt_content(&mut self, number: u32) -> DriverResult<kkm_core::tlv::ReceiptContent> {
        let data = self.document_tlv(number).await?;
        kkm_core::tlv::receipt_content(&data).map_err(DriverError::Protocol)
    }

    async fn find_document(&mut self, number: u32) -> DriverResult<FiscalDocument> {
        let mut d = self.read_document(number).await?;
        let ofd = self.ofd_status().await?;
        d.ofd_acknowledged = ofd.first_unsent_number.is_none_or(|first| d.number < first);
        Ok(d)
    }

    async fn shift_totals(&mut self) -> DriverResult<ShiftTotals> {
        let shift_number = self.status().await?.shift_number;
        let mut by_operation = Vec::new();
        let mut receipt_count = 0;
        let mut receipts_by_operation = Vec::new();
        for op in [Operation::Sale, Operation::SaleReturn, Operation::Purchase, Operation::PurchaseReturn] {
            let t = receipt_type(op);
            let count = self.register(REG_RECEIPTS, t, 0, 5).await?.0 as u32;
            receipt_count += count;
            receipts_by_operation.push(kkm_core::OperationCount { operation: op, count });
            for pay in PaymentType::ALL {
                let sum = self.register(REG_SUM, t, payment_code(pay), 7).await?;
                if sum.0 != 0 {
                    by_operation.push(OperationTotals { operation: op, payment: pay, sum });
                }
            }
        }
        let drawer = self.call(CASH_IN_DRAWER, &[]).await?;
        Ok(ShiftTotals {
            shift_number,
            cash_in_drawer: Money(bcd::decode(&drawer).ok_or_else(|| DriverError::Protocol("the cash-in-drawer answer is not BCD".into()))? as i64),
            cash_ins: self.register(REG_CASH_INS, 0, 0, 7).await?,
            cash_outs: self.register(REG_CASH_OUTS, 0, 0, 7).await?,
            by_operation,
            receipt_count,
            receipts_by_operation,
            opened_at: None,
        })
    }

    async fn open_shift(&mut self, _cashier: Option<&Cashier>) -> DriverResult<FiscalResult> {
        self.in_mode(MODE_REGISTRATION, OPEN_SHIFT, &[0]).await?;
        self.last_fiscal_result().await
    }

    async fn close_shift(&mut self, _cashier: Option<&Cashier>) -> DriverResult<FiscalResult> {
        self.in_mode(MODE_Z, Z_REPORT, &[]).await?;
        self.last_fiscal_result().await
    }

    async fn x_report(&mut self) -> DriverResult<()> {
        self.in_mode(MODE_X, X_REPORT, &[1]).await.map(|_| ())
    }

    async fn cash_in(&mut self, sum: Money) -> DriverResult<()> {
        // BCD5 holds at most 9 999 999 999 kopecks; beyond it the field would saturate.
        kkm_core::check_sum(sum, &self.profile.limits)?;
        let mut p = vec![0];
        p.extend(bcd::money(sum, 5));
        self.in_mode(MODE_REGISTRATION, CASH_IN, &p).await.map(|_| ())
    }

    async fn cash_out(&mut self, sum: Money) -> DriverResult<()> {
        kkm_core::check_sum(sum, &self.profile.limits)?;
        let mut p = vec![0];
        p.extend(bcd::money(sum, 5));
        self.in_mode(MODE_REGISTRATION, CASH_OUT, &p).await.map(|_| ())
    }

    async fn fiscalize_with(&mut self, receipt: &Receipt, before_close: BeforeClose<'_>) -> DriverResult<FiscalResult> {
        let totals = receipt.validate(&self.profile.limits)?;
        let outcome = self.build_receipt(receipt, &totals, before_close).await;
        if let Err(DriverError::Device { .. }) = &outcome {
            let _ = self.cancel_receipt().await;
        }
        outcome
    }

    async fn cancel_receipt(&mut self) -> DriverResult<()> {
        match self.in_mode(MODE_REGISTRATION, CANCEL_RECEIPT, &[]).await {
            Ok(_) => Ok(()),
            Err(DriverError::Device { raw: 0x9A | 0x66 | 0x88 | 0xF0, .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn print_last_copy(&mut self) -> DriverResult<()> {
        self.call(REPRINT_LAST, &[]).await.map(|_| ())
    }

    async fn print_text(&mut self, lines: &[String]) -> DriverResult<()> {
        for l in lines {
            let mut t = bcd::atol_text_strict(l, "print.text_unprintable", "Текст", "Text")?;
            t.truncate(64);
            self.call(PRINT_STRING, &t).await?;
        }
        Ok(())
    }

    async fn open_drawer(&mut self) -> DriverResult<()> {
        self.call(0x80, &[]).await.map(|_| ())
    }

    async fn disconnect(&mut self) {
        self.link = None;
        self.mode = None;
    }
}
