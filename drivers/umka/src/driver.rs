//! `UmkaDriver`: the `FiscalDriver` for units on the УМКА HTTP API (Neva-01-F profile).
//!
//! * Every reading comes from `cashboxstatus.json`: identity, ФН, ОФД backlog, shift,
//!   drawer cash and the cash-in/out counters. Reads are repeated up to twice after a
//!   link failure (they change nothing); requests that print or fiscalise never are.
//! * A receipt is one `POST /fiscalcheck.json`. The driver reads the status first (shift
//!   open and under 24 h, paper), then calls `before_close` and sends the one request
//!   that makes the receipt fiscal. A lost answer is an unknown outcome for the queue.
//! * Tag 1192 (дополнительный реквизит чека) carries the job's key, so that recovery can
//!   tell the job's receipt from a keypad one of the same total (see
//!   [`FiscalDriver::receipt_reference`]). It is printed on the receipt.
//! * `sessionId`: one per queue job ([`FiscalDriver::set_job_key`]), sent again when the
//!   same job is retried; a new one after the unit definitely refused the previous one
//!   (Armax's own sample says to keep the id after no answer and change it after an
//!   error). Outside the queue each receipt gets a fresh id.
//! * X-report, cash in/out, free text and the drawer have no call in any public source:
//!   they fail with `device.not_in_profile` instead of a guess.

use crate::client::{Client, Credentials, Timeouts};
use crate::codec::{self, CashboxStatus};
use crate::errors;
use async_trait::async_trait;
use kkm_core::error::{DriverError, DriverResult, ErrorInfo};
use kkm_core::port::PortSpec;
use kkm_core::*;
use std::time::Duration;

const PROFILE_NAME: &str = "УМКА (Нева-01-Ф)";

const SHIFT_CLOSED: ErrorInfo = kkm_core::error_info!(
    "device.shift_closed",
    ShiftClosed,
    "Смена не открыта",
    "The shift is not open",
    "Откройте смену (агент делает это сам, если разрешено настройкой)."
);

pub struct UmkaDriver {
    port: PortSpec,
    profile: &'static ModelProfile,
    credentials: Credentials,
    timeouts: Timeouts,
    client: Option<Client>,
    job_key: Option<String>,
    /// Bumped after the unit definitely refused a `fiscalcheck` of the current job.
    generation: u32,
    /// For receipts outside the queue.
    counter: u64,
}

fn sanitize(key: &str) -> String {
    key.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').take(48).collect()
}

impl UmkaDriver {
    pub fn new(port: PortSpec, profile: &'static ModelProfile) -> UmkaDriver {
        UmkaDriver {
            port,
            profile,
            credentials: Credentials::default(),
            timeouts: Timeouts::default(),
            client: None,
            job_key: None,
            generation: 1,
            counter: 0,
        }
    }

    pub fn with_credentials(mut self, credentials: Credentials) -> UmkaDriver {
        self.credentials = credentials;
        self.client = None;
        self
    }

    pub fn with_timeouts(mut self, timeouts: Timeouts) -> UmkaDriver {
        self.timeouts = timeouts;
        self.client = None;
        self
    }

    fn client(&mut self) -> DriverResult<&Client> {
        if self.client.is_none() {
            self.client = Some(Client::new(&self.port, self.credentials.clone(), self.timeouts)?);
        }
        self.client.as_ref().ok_or(DriverError::Unsupported("no HTTP client"))
    }

    /// A read that changes nothing: repeated up to twice after a link failure or an
    /// answer that does not parse (a garbled answer is a link problem too).
    async fn read<T>(&mut self, path: &str, parse: fn(&[u8]) -> DriverResult<T>) -> DriverResult<T> {
        let deadline = self.timeouts.read;
        let mut last = None;
        for attempt in 0..3u64 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(150 * attempt)).await;
            }
            match self.client()?.get(path, deadline).await.and_then(|b| parse(&b)) {
                Ok(v) => return Ok(v),
                Err(e) if e.is_link() => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or(DriverError::Protocol("no answer".into())))
    }

    async fn cashbox(&mut self) -> DriverResult<CashboxStatus> {
        self.read("/cashboxstatus.json", codec::parse_status).await
    }

    /// The session id for the next `fiscalcheck`.
    fn session_id(&mut self) -> String {
        match &self.job_key {
            Some(k) => format!("kkm-{k}-{}", self.generation),
            None => {
                self.counter += 1;
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos());
                format!("kkm-{nanos:x}-{}", self.counter)
            }
        }
    }

    fn clock(s: &CashboxStatus) -> time::PrimitiveDateTime {
        codec::parse_datetime(&s.dt).unwrap_or(time::macros::datetime!(2000-01-01 0:00))
    }

    fn shift_state(s: &CashboxStatus) -> ShiftState {
        codec::shift_state(s)
    }

    fn local(info: ErrorInfo) -> DriverError {
        DriverError::Device { family: ProtocolFamily::Umka, raw: 0, info }
    }

    /// A document request that prints (shift open/close): sent once.
    async fn document(&mut self, path: &str) -> DriverResult<codec::DocData> {
        let deadline = self.timeouts.print;
        let body = self.client()?.get(path, deadline).await?;
        codec::parse_document(&body)
    }

    /// After a refusal we cannot explain by its code, the status may: a closed or an
    /// expired shift is the usual reason, and the queue acts on those.
    async fn explain(&mut self, e: DriverError) -> DriverError {
        if let DriverError::Device { info, .. } = &e {
            if info.code == "device.unknown_error" {
                if let Ok(s) = self.cashbox().await {
                    match Self::shift_state(&s) {
                        ShiftState::Closed => return Self::local(SHIFT_CLOSED),
                        ShiftState::Expired => return errors::device_error(136, ""),
                        ShiftState::Open => {}
                    }
                }
            }
        }
        e
    }
}

#[async_trait]
impl FiscalDriver for UmkaDriver {
    fn profile(&self) -> &ModelProfile {
        self.profile
    }

    fn set_job_key(&mut self, key: Option<&str>) {
        let key = key.map(sanitize).filter(|k| !k.is_empty());
        if key != self.job_key {
            self.job_key = key;
            self.generation = 1;
        }
    }

    /// The job key (at most 16 characters), sent in tag 1192 and read back by
    /// `fiscaldoc.json`.
    fn receipt_reference(&self) -> Option<String> {
        self.job_key.as_ref().map(|k| k.chars().take(16).collect())
    }

    async fn identity(&mut self) -> DriverResult<DeviceIdentity> {
        let s = self.cashbox().await?;
        let fn_serial = s.fs_status.as_ref().map(|f| f.fs_number.clone()).filter(|n| !n.is_empty()).unwrap_or(s.fs_number.clone());
        Ok(DeviceIdentity {
            protocol: Some(ProtocolFamily::Umka),
            model_id: u16::try_from(s.model).unwrap_or(0),
            model_name: s.modelstr.clone(),
            firmware: format!("{}.{}", s.ver, s.subver),
            serial: s.serial.clone(),
            rnm: s.reg_number.clone(),
            inn: s.user_inn.clone(),
            fn_serial,
            ffd_version: s.ffd_version(),
            tax_systems: s.tax_systems(),
        })
    }

    async fn status(&mut self) -> DriverResult<DeviceStatus> {
        let s = self.cashbox().await?;
        Ok(DeviceStatus {
            shift: Self::shift_state(&s),
            shift_number: u32::try_from(s.cycle_number).unwrap_or(0),
            // A УМКА receipt is one request: nothing stays open between requests.
            receipt_open: false,
            paper_present: s.paper_present(),
            // No "continue printing" call is known; the unit is assumed to finish an
            // interrupted print by itself (unconfirmed), and the queue prints a copy.
            awaiting_continue: false,
            cover_open: s.cover_open(),
            clock: Self::clock(&s),
            mode_raw: u8::try_from(s.mode).unwrap_or(u8::MAX),
            submode_raw: u8::try_from(s.sub_mode).unwrap_or(u8::MAX),
        })
    }

    async fn fn_status(&mut self) -> DriverResult<FnStatus> {
        let s = self.cashbox().await?;
        let f = s.fs_status.as_ref().ok_or_else(|| {
            Self::local(kkm_core::error_info!(
                "device.fn_missing",
                FnFailure,
                "ККТ не видит ФН (нет fsStatus в ответе)",
                "The unit reports no fiscal storage",
                "Проверьте, что ФН установлен и ККТ зарегистрирована; обратитесь в сервисный центр."
            ))
        })?;
        let last = match f.last_doc_number {
            Some(n) => u32::try_from(n).map_err(|_| DriverError::Protocol(format!("УМКА: lastDocNumber {n} out of range")))?,
            // A ФН ready for registration (phase 1) has no documents and no number yet.
            None if f.phase == 1 => return Err(Self::local(kkm_atol::errors::info(0xA8))),
            None => return Err(DriverError::Protocol("УМКА: the status has no fsStatus.lastDocNumber".into())),
        };
        Ok(FnStatus {
            serial: if f.fs_number.is_empty() { s.fs_number.clone() } else { f.fs_number.clone() },
            phase: FnPhase::from_code(u8::try_from(f.phase).unwrap_or(0)),
            last_document_number: last,
            shift_open: f.cycle_is_open != 0,
            document_open: false,
            warnings: 0,
            valid_until: codec::parse_date(&f.life_time.expiration_dt),
        })
    }

    async fn ofd_status(&mut self) -> DriverResult<OfdStatus> {
        let s = self.cashbox().await?;
        let t = s.fs_status.map(|f| f.transport).unwrap_or_default();
        let count = u32::try_from(t.offline_docs_count).unwrap_or(0);
        Ok(OfdStatus {
            unsent_count: count,
            first_unsent_number: (count > 0).then(|| u32::try_from(t.first_doc_number).ok()).flatten(),
            first_unsent_at: if count > 0 { t.first_doc_dt.as_deref().and_then(codec::parse_datetime) } else { None },
        })
    }

    async fn find_document(&mut self, number: u32) -> DriverResult<FiscalDocument> {
        let data = self.read(&format!("/fiscaldoc.json?number={number}&print=0"), codec::parse_document).await?;
        let ofd = self.ofd_status().await?;
        let acked = ofd.first_unsent_number.is_none_or(|first| number < first);
        let doc = codec::fiscal_document(&data, acked)?;
        if doc.number != number {
            return Err(DriverError::Protocol(format!("УМКА: asked for document {number}, got {}", doc.number)));
        }
        Ok(doc)
    }

    async fn receipt_content(&mut self, number: u32) -> DriverResult<kkm_core::tlv::ReceiptContent> {
        let data = self.read(&format!("/fiscaldoc.json?number={number}&print=0"), codec::parse_document).await?;
        codec::receipt_content(&data)
    }

    async fn shift_totals(&mut self) -> DriverResult<ShiftTotals> {
        let s = self.cashbox().await?;
        let money = |v: i64, what: &str| {
            if v < 0 {
                Err(DriverError::Protocol(format!("УМКА: negative {what} in the status")))
            } else {
                Ok(Money(v))
            }
        };
        Ok(ShiftTotals {
            shift_number: u32::try_from(s.cycle_number).unwrap_or(0),
            cash_in_drawer: money(s.cash, "cash")?,
            cash_ins: money(s.introductions_sum, "introductionsSum")?,
            cash_outs: money(s.payouts_sum, "payoutsSum")?,
            // The status has no sums by operation and payment type (unconfirmed where
            // the API gives them); receipts in the shift are `lastCheckNumber`.
            by_operation: Vec::new(),
            receipt_count: u32::try_from(s.last_check_number).unwrap_or(0),
            receipts_by_operation: Vec::new(),
            opened_at: None,
        })
    }

    async fn open_shift(&mut self, _cashier: Option<&Cashier>) -> DriverResult<FiscalResult> {
        let data = self.document("/cycleopen.json?print=1").await?;
        codec::fiscal_result(&data)
    }

    async fn close_shift(&mut self, _cashier: Option<&Cashier>) -> DriverResult<FiscalResult> {
        match self.document("/cycleclose.json?print=1").await {
            Ok(data) => codec::fiscal_result(&data),
            Err(e) => Err(self.explain(e).await),
        }
    }

    async fn x_report(&mut self) -> DriverResult<()> {
        Err(DriverError::NotInProfile { profile: PROFILE_NAME, what: "X-отчёт / X-report" })
    }

    async fn cash_in(&mut self, _sum: Money) -> DriverResult<()> {
        Err(DriverError::NotInProfile { profile: PROFILE_NAME, what: "внесение / cash in" })
    }

    async fn cash_out(&mut self, _sum: Money) -> DriverResult<()> {
        Err(DriverError::NotInProfile { profile: PROFILE_NAME, what: "выплата / cash out" })
    }

    async fn fiscalize_with(&mut self, receipt: &Receipt, before_close: BeforeClose<'_>) -> DriverResult<FiscalResult> {
        let totals = receipt.validate(&self.profile.limits)?;
        let s = self.cashbox().await?;
        match Self::shift_state(&s) {
            ShiftState::Closed => return Err(Self::local(SHIFT_CLOSED)),
            ShiftState::Expired => return Err(errors::device_error(136, "")),
            ShiftState::Open => {}
        }
        if !s.paper_present() {
            return Err(Self::local(kkm_atol::errors::info(0x67)));
        }
        let session = self.session_id();
        let reference = self.receipt_reference();
        let frame = codec::fiscal_check(receipt, &totals, &session, reference.as_deref(), s.ffd());
        let body = serde_json::to_vec(&frame).map_err(|e| DriverError::Protocol(format!("cannot encode the receipt: {e}")))?;
        before_close()?;
        let deadline = self.timeouts.print;
        let answer = self.client()?.post("/fiscalcheck.json", body, deadline).await;
        let outcome = answer.and_then(|b| codec::parse_document(&b)).and_then(|d| codec::fiscal_result(&d));
        match outcome {
            Ok(r) => Ok(r),
            Err(e @ DriverError::Device { .. }) => {
                // A definite refusal: the next try of this job is a new request.
                self.generation += 1;
                Err(self.explain(e).await)
            }
            Err(e) => Err(e),
        }
    }

    async fn cancel_receipt(&mut self) -> DriverResult<()> {
        // A receipt is a single request: the unit never holds one open for us.
        Ok(())
    }

    async fn print_last_copy(&mut self) -> DriverResult<()> {
        let last = self.fn_status().await?.last_document_number;
        self.document(&format!("/fiscaldoc.json?number={last}&print=1")).await.map(|_| ())
    }

    async fn print_text(&mut self, _lines: &[String]) -> DriverResult<()> {
        Err(DriverError::NotInProfile { profile: PROFILE_NAME, what: "печать текста / free text" })
    }

    async fn open_drawer(&mut self) -> DriverResult<()> {
        Err(DriverError::NotInProfile { profile: PROFILE_NAME, what: "открытие денежного ящика / cash drawer" })
    }

    async fn disconnect(&mut self) {
        // No connection is held between requests.
        self.client = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_follow_the_job() {
        let mut d = UmkaDriver::new(PortSpec::parse("http://127.0.0.1:8088").unwrap(), &crate::NEVA_01_F_UMKA);
        d.set_job_key(Some("17-ab/cd"));
        let a = d.session_id();
        assert_eq!(a, "kkm-17-abcd-1");
        assert_eq!(d.session_id(), a, "a retry of the same job reuses the id");
        d.generation += 1;
        assert_eq!(d.session_id(), "kkm-17-abcd-2", "after a refusal the id changes");
        d.set_job_key(Some("18"));
        assert_eq!(d.session_id(), "kkm-18-1");
        d.set_job_key(None);
        assert_ne!(d.session_id(), d.session_id(), "outside the queue every receipt is new");
    }
}
