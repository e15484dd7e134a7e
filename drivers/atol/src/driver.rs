//! `AtolDriver`: the `FiscalDriver` for ATOL-protocol registers (Neva-01-F profile).
//!
//! A receipt is `92` (open), `EA`+`EB` per item, `99` per payment and `4A` (close), all
//! in registration mode (mode 1, entered with `56`). Reports need their own modes (2 for
//! X, 3 for Z). The driver remembers the mode it set and re-enters it when the device
//! says "not in this mode" (after a power cut, for instance).

use crate::bcd;
use crate::commands::*;
use crate::errors::{device_error, SHIFT_CLOSED};
use crate::link::V3Link;
use crate::link_v2::V2Link;
use async_trait::async_trait;
use kkm_core::error::{DriverError, DriverResult};
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

fn datetime_field(c: &mut Cursor) -> DriverResult<time::PrimitiveDateTime> {
    let b = c.bytes(5)?;
    bcd::read_datetime(b).ok_or_else(|| DriverError::Protocol("bad date in the answer".into()))
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
        match answer.as_slice() {
            [ANSWER_U, 0, rest @ ..] => Ok(rest.to_vec()),
            [ANSWER_U, code, ..] => Err(device_error(*code)),
            [ANSWER_D, rest @ ..] => Ok(rest.to_vec()),
            _ => Err(DriverError::Protocol(format!("unexpected answer to {cmd:#04x}"))),
        }
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

    async fn last_fiscal_result(&mut self) -> DriverResult<FiscalResult> {
        let n = self.fn_status().await?.last_document_number;
        let d = self.find_document(n).await?;
        Ok(FiscalResult { document_number: d.number, fiscal_sign: d.fiscal_sign, datetime: d.datetime, shift_number: d.shift_number })
    }

    async fn register(&mut self, reg: u8, p1: u8, p2: u8, len: usize) -> DriverResult<Money> {
        let d = self.call(READ_REGISTER, &[reg, p1, p2]).await?;
        Ok(Money(bcd_field(&mut Cursor::new(&d, "register"), len)? as i64))
    }

    async fn build_receipt(&mut self, receipt: &Receipt, totals: &ReceiptTotals, before_close: BeforeClose<'_>) -> DriverResult<FiscalResult> {
        self.in_mode(MODE_REGISTRATION, OPEN_RECEIPT, &[0, receipt_type(receipt.operation)]).await?;
        for (item, line) in receipt.items.iter().zip(&totals.lines) {
            self.call(BEGIN_POSITION, &[]).await?;
            let mut p = vec![0u8];
            p.extend(bcd::money(item.price, 7));
            p.extend(bcd::quantity(item.quantity));
            p.extend(bcd::money(*line, 7));
            p.push(tax_code(item.vat));
            p.extend(bcd::money(item.vat.tax_in(*line), 7));
            p.push(item.department);
            p.push(item.payment_object.code());
            p.push(item.payment_method.code());
            p.push(0);
            p.extend(bcd::money(Money::ZERO, 7));
            p.extend([0, 0]);
            let mut name = bcd::cp866(&item.name);
            name.truncate(128);
            p.extend(name);
            self.call(POSITION, &p).await?;
        }
        for pay in &receipt.payments {
            let mut p = vec![0, payment_code(pay.kind)];
            p.extend(bcd::money(pay.sum, 5));
            self.call(PAYMENT, &p).await?;
        }
        let mut p = vec![0, 0];
        p.extend(bcd::money(Money::ZERO, 5));
        before_close()?;
        let d = self.call(CLOSE_RECEIPT, &p).await?;
        let mut c = Cursor::new(&d, "close receipt");
        let number = c.u32()?;
        let sign = c.u32()?;
        let datetime = datetime_field(&mut c)?;
        Ok(FiscalResult { document_number: number, fiscal_sign: sign, datetime, shift_number: None })
    }
}

#[async_trait]
impl FiscalDriver for AtolDriver {
    fn profile(&self) -> &ModelProfile {
        self.profile
    }

    async fn identity(&mut self) -> DriverResult<DeviceIdentity> {
        let t = self.call(DEVICE_TYPE, &[]).await?;
        let mut c = Cursor::new(&t, "device type");
        let head = c.bytes(10)?;
        let model_id = u16::from(head[2]);
        let version = format!("{}.{}.{}", head[5], head[6], head[7]);
        let name = bcd::from_cp866(c.rest());
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
        let ss = self.fn_request(FN_SHIFT_STATE, &[]).await?;
        let mut c = Cursor::new(&ss, "shift state");
        let open = c.u8()? != 0;
        c.bytes(2)?;
        let expired = c.u8()? != 0;
        Ok(DeviceStatus {
            shift: match (open, expired) {
                (false, _) => ShiftState::Closed,
                (true, true) => ShiftState::Expired,
                (true, false) => ShiftState::Open,
            },
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
        let d = self.fn_request(FN_STATUS, &[]).await?;
        let mut c = Cursor::new(&d, "FN status");
        let phase = FnPhase::from_code(c.u8()?);
        let last = c.u32()?;
        let shift_open = c.u8()? != 0;
        let document_open = c.u8()? != 0;
        let warnings = c.u8()?;
        let serial = Cursor::new(&self.fn_request(FN_SERIAL, &[]).await?, "fn serial").ascii(16)?;
        let e = self.fn_request(FN_EXPIRY, &[]).await?;
        let b = Cursor::new(&e, "FN expiry").bytes(3)?.to_vec();
        let valid_until = time::Month::try_from(bcd::unbyte(b[1]))
            .ok()
            .and_then(|m| time::Date::from_calendar_date(2000 + i32::from(bcd::unbyte(b[0])), m, bcd::unbyte(b[2])).ok());
        Ok(FnStatus { serial, phase, last_document_number: last, shift_open, document_open, warnings, valid_until })
    }

    async fn ofd_status(&mut self) -> DriverResult<OfdStatus> {
        let d = self.fn_request(FN_OFD_STATUS, &[]).await?;
        let mut c = Cursor::new(&d, "OFD status");
        c.u8()?;
        let count = u32::from(c.u16()?);
        let first = c.u32()?;
        let at = datetime_field(&mut c)?;
        Ok(OfdStatus {
            unsent_count: count,
            first_unsent_number: (count > 0).then_some(first),
            first_unsent_at: (count > 0).then_some(at),
        })
    }

    async fn find_document(&mut self, number: u32) -> DriverResult<FiscalDocument> {
        let d = self.fn_request(FN_DOCUMENT, &number.to_le_bytes()).await?;
        let mut c = Cursor::new(&d, "document");
        let t = c.u8()?;
        let kind = match t {
            1 => DocumentKind::Registration,
            2 => DocumentKind::ShiftOpen,
            3 => DocumentKind::Receipt,
            5 => DocumentKind::ShiftClose,
            _ => DocumentKind::Other,
        };
        let acked = c.u8()? != 0;
        let datetime = datetime_field(&mut c)?;
        let number = c.u32()?;
        let fiscal_sign = c.u32()?;
        let (mut operation, mut total, mut shift_number) = (None, None, None);
        match kind {
            DocumentKind::Receipt => {
                operation = operation_of(c.u8()?);
                total = Some(Money(bcd_field(&mut c, 5)? as i64));
            }
            DocumentKind::ShiftOpen | DocumentKind::ShiftClose => shift_number = Some(u32::from(c.u16()?)),
            _ => {}
        }
        Ok(FiscalDocument { number, kind, datetime, fiscal_sign, operation, total, shift_number, ofd_acknowledged: acked, reference: None })
    }

    async fn shift_totals(&mut self) -> DriverResult<ShiftTotals> {
        let shift_number = self.status().await?.shift_number;
        let mut by_operation = Vec::new();
        let mut receipt_count = 0;
        for op in [Operation::Sale, Operation::SaleReturn, Operation::Purchase, Operation::PurchaseReturn] {
            let t = receipt_type(op);
            receipt_count += self.register(REG_RECEIPTS, t, 0, 5).await?.0 as u32;
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
            cash_in_drawer: Money(bcd_field(&mut Cursor::new(&drawer, "cash in drawer"), 7)? as i64),
            cash_ins: self.register(REG_CASH_INS, 0, 0, 7).await?,
            cash_outs: self.register(REG_CASH_OUTS, 0, 0, 7).await?,
            by_operation,
            receipt_count,
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
        let mut p = vec![0];
        p.extend(bcd::money(sum, 5));
        self.in_mode(MODE_REGISTRATION, CASH_IN, &p).await.map(|_| ())
    }

    async fn cash_out(&mut self, sum: Money) -> DriverResult<()> {
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
            let mut t = bcd::cp866(l);
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
