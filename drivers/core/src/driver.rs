//! The driver trait: what the agent can ask of any fiscal register.
//!
//! Methods are named after fiscal operations, not wire commands. Each takes `&mut self`
//! because a register does one thing at a time; the daemon owns one driver per device
//! in a single worker task, so there is never a second caller on the same port.
//!
//! A driver reconnects by itself: after a link error the next call reopens the port.
//! A link error in the middle of a fiscalising call means "unknown outcome": the caller
//! must ask [`FiscalDriver::fn_status`] and [`FiscalDriver::find_document`] before it
//! tries again. That is the exactly-once rule, and it lives in the queue, not here.

use crate::device::*;
use crate::error::DriverResult;
use crate::money::Money;
use crate::receipt::{Cashier, Limits, Receipt};
use async_trait::async_trait;

/// A model's fixed facts: how to talk to it and what it can print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelProfile {
    /// Config key, e.g. `azur-01f`.
    pub key: &'static str,
    pub name: &'static str,
    pub family: ProtocolFamily,
    /// Model ids the device reports for itself.
    pub model_ids: &'static [u16],
    pub default_baud: u32,
    /// Speeds to try when detecting, most likely first.
    pub bauds: &'static [u32],
    pub default_tcp_port: u16,
    pub limits: Limits,
    pub chars_per_line: usize,
}

#[async_trait]
pub trait FiscalDriver: Send {
    fn profile(&self) -> &ModelProfile;

    /// ЗН, РНМ, ИНН, ФН number, model and firmware.
    async fn identity(&mut self) -> DriverResult<DeviceIdentity>;
    async fn status(&mut self) -> DriverResult<DeviceStatus>;
    async fn fn_status(&mut self) -> DriverResult<FnStatus>;
    async fn ofd_status(&mut self) -> DriverResult<OfdStatus>;
    /// The ОФД host and port from the register's settings, so that diagnostics can
    /// check from the PC that the host answers. Offered only where a source confirms
    /// where the setting lives; otherwise `Unsupported`.
    async fn ofd_address(&mut self) -> DriverResult<OfdAddress> {
        Err(crate::error::DriverError::Unsupported("reading the ОФД address"))
    }
    /// Reads a fiscal document from the ФН archive by its number.
    async fn find_document(&mut self, number: u32) -> DriverResult<FiscalDocument>;
    /// A receipt's content from the ФН archive (payments, lines, cashier): what proves
    /// that a receipt in the ФН is a job's own, beyond its operation and total.
    async fn receipt_content(&mut self, number: u32) -> DriverResult<crate::tlv::ReceiptContent> {
        let _ = number;
        Err(crate::error::DriverError::Unsupported("reading a document's TLV"))
    }
    /// The current shift's money counters, without printing.
    async fn shift_totals(&mut self) -> DriverResult<ShiftTotals>;
    /// The shift's cash-in and cash-out totals, cheaply: the counters that tell whether
    /// a cash move whose answer was lost really ran. A driver offers it only where the
    /// registers are confirmed by a source; otherwise a lost cash move needs a person.
    async fn cash_moves(&mut self) -> DriverResult<(Money, Money)> {
        Err(crate::error::DriverError::Unsupported("cash-move counters"))
    }

    /// Открыть смену.
    async fn open_shift(&mut self, cashier: Option<&Cashier>) -> DriverResult<FiscalResult>;
    /// Z-отчёт: closes the shift.
    async fn close_shift(&mut self, cashier: Option<&Cashier>) -> DriverResult<FiscalResult>;
    /// X-отчёт: prints the shift's totals without closing it.
    async fn x_report(&mut self) -> DriverResult<()>;
    /// Внесение.
    async fn cash_in(&mut self, sum: Money) -> DriverResult<()>;
    /// Выплата (изъятие).
    async fn cash_out(&mut self, sum: Money) -> DriverResult<()>;
    /// Fiscalises a receipt: opens it, adds the items and payments, closes it.
    /// The receipt must have passed [`Receipt::validate`] with this model's limits.
    async fn fiscalize(&mut self, receipt: &Receipt) -> DriverResult<FiscalResult> {
        self.fiscalize_with(receipt, &mut || Ok(())).await
    }
    /// [`FiscalDriver::fiscalize`], calling `before_close` right before the one command
    /// that makes the receipt fiscal (Shtrih FF45, ATOL 4A). The queue commits a marker
    /// there: a job without it cannot own any document in the ФН, whatever its total.
    /// If `before_close` fails, the receipt is left open and its error returned.
    async fn fiscalize_with(&mut self, receipt: &Receipt, before_close: BeforeClose<'_>) -> DriverResult<FiscalResult>;
    /// Cancels a receipt left open on the device. Succeeds if none is open.
    async fn cancel_receipt(&mut self) -> DriverResult<()>;
    /// Prints a copy of the last document (after paper ran out mid-print).
    async fn print_last_copy(&mut self) -> DriverResult<()>;
    /// Finishes a print that paper-out interrupted, when the status says the device
    /// waits for it ([`DeviceStatus::awaiting_continue`]; Shtrih's B0). Until then a
    /// unit refuses every printing command.
    async fn continue_print(&mut self) -> DriverResult<()> {
        Ok(())
    }
    /// Prints non-fiscal text lines.
    async fn print_text(&mut self, lines: &[String]) -> DriverResult<()>;
    async fn open_drawer(&mut self) -> DriverResult<()>;
    /// Tells the driver which queue job the next calls belong to (`None`: no job, e.g. the
    /// CLI). A protocol with request ids (УМКА's `sessionId`) keeps one id per job and
    /// sends it again on a retry of that job. Byte-protocol drivers ignore it.
    fn set_job_key(&mut self, _key: Option<&str>) {}
    /// The reference this driver stamps on the current job's receipt and reads back in
    /// [`FiscalDocument::reference`], if its protocol allows (УМКА: tag 1192). With one,
    /// recovery owns a receipt only if it carries the job's reference: a receipt of the
    /// same total punched on the keypad is never taken for the job's.
    fn receipt_reference(&self) -> Option<String> {
        None
    }
    /// Releases the port so that other programs (the vendor's test utility) can use it.
    /// The next call reopens it.
    async fn disconnect(&mut self);
}

/// See [`FiscalDriver::fiscalize_with`].
pub type BeforeClose<'a> = &'a mut (dyn FnMut() -> DriverResult<()> + Send);

/// Drivers are used through a box so that the model can be chosen from config.
pub type DriverBox = Box<dyn FiscalDriver>;
