//! The fiscal core: the ФН, the shift state machine, money registers and the printer's
//! paper, as one persistent state machine.
//!
//! Rules modelled on real units:
//! * Every fiscal document (registration, shift open, receipt, shift close) gets the next
//!   number in the ФН and a fiscal sign (ФП). Cash-ins and cash-outs are not fiscal
//!   documents; they only move the cash register.
//! * A shift lasts 24 hours at most; after that only a Z-report is accepted. The clock
//!   can be moved (`clock +25h`) so tests need not wait a day.
//! * Documents stay unsent to the ОФД while the ОФД is offline; 30 days after the oldest
//!   unsent one the ФН refuses new documents.
//! * Paper can run out before a command (it is refused) or while a fiscalised receipt
//!   prints (the ФН has it, the paper does not: a copy must be printed).
//!
//! The state is saved to a JSON file after every change, written to a temporary file,
//! synced and renamed over the old one, so a power cut of the emulator process (kill -9)
//! leaves either the old or the new state, never a torn one.

use crate::printer;
use kkm_core::{
    checks, DocumentKind, FiscalDocument, Money, Operation, PaymentType, Quantity, ShiftState, VatRate,
};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use time::{Date, Duration, OffsetDateTime, PrimitiveDateTime, UtcOffset};

/// Who the emulated unit is. Everything is configurable, including a lost ЗН.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmuIdentity {
    pub model_name: String,
    /// The factory number printed on the case.
    pub serial: String,
    /// The unit "lost" its factory number and reports zeros (слетел ЗН).
    #[serde(default)]
    pub serial_lost: bool,
    pub inn: String,
    /// The full 16-digit РНМ; built from the serial and ИНН when the state is created.
    pub rnm: String,
    pub fn_serial: String,
    pub org_name: String,
    #[serde(with = "date_fmt")]
    pub fn_valid_until: Date,
    /// The ФФД version of the registration (tag 1209 code: 2 = 1.05, 4 = 1.2).
    #[serde(default = "default_ffd")]
    pub ffd_code: u8,
    /// The registered tax systems, the tag-1062 bit mask (0x02 = УСН доход).
    #[serde(default = "default_tax_systems")]
    pub tax_systems: u8,
}

fn default_ffd() -> u8 {
    4
}

fn default_tax_systems() -> u8 {
    kkm_core::TaxSystem::UsnIncome.bit()
}

impl EmuIdentity {
    /// A consistent identity: the РНМ's check digits match the serial and ИНН.
    pub fn new(model_name: &str, serial: &str, fn_serial: &str) -> EmuIdentity {
        let inn = "7707083893".to_string();
        let today = OffsetDateTime::now_utc().date();
        EmuIdentity {
            model_name: model_name.into(),
            serial: serial.into(),
            serial_lost: false,
            rnm: checks::rnm_with_check("0000000001", &inn, serial),
            inn,
            fn_serial: fn_serial.into(),
            org_name: "ИП Салон красоты".into(),
            fn_valid_until: today + Duration::days(470),
            ffd_code: default_ffd(),
            tax_systems: default_tax_systems(),
        }
    }

    /// The factory number as the unit reports it.
    pub fn reported_serial(&self) -> String {
        if self.serial_lost {
            "0".repeat(self.serial.len().max(1))
        } else {
            self.serial.clone()
        }
    }
}

/// One line of an open receipt, as the front-end decoded it from the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptLine {
    pub name: String,
    pub price: Money,
    pub quantity: Quantity,
    pub amount: Money,
    pub vat: VatRate,
    pub department: u8,
    pub payment_method: u8,
    pub payment_object: u8,
    /// Tag 2108 (мера количества), when the front-end received one for this line.
    #[serde(default)]
    pub measure_unit: Option<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenReceipt {
    pub operation: Operation,
    pub lines: Vec<ReceiptLine>,
    /// Sums by [`PaymentType`], in the order of `PaymentType::ALL`.
    pub payments: [Money; 5],
    #[serde(default)]
    pub cashier: Option<String>,
    #[serde(default)]
    pub contact: Option<String>,
    /// The client's reference the receipt carries (УМКА tag 1192).
    #[serde(default)]
    pub reference: Option<String>,
}

impl OpenReceipt {
    pub fn total(&self) -> Money {
        Money(self.lines.iter().map(|l| l.amount.0).sum())
    }
}

/// Why the core refused a request. Each front-end maps these to its protocol's codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CoreError {
    #[error("shift is closed")]
    ShiftClosed,
    #[error("shift is over 24 hours")]
    ShiftExpired,
    #[error("shift is already open")]
    ShiftAlreadyOpen,
    #[error("a receipt is open")]
    ReceiptOpen,
    #[error("no receipt is open")]
    NoReceipt,
    #[error("no paper")]
    PaperOut,
    #[error("waiting for the interrupted document to be printed")]
    AwaitingContinue,
    #[error("not enough cash in the drawer")]
    NotEnoughCash,
    #[error("payments are less than the total")]
    PaymentsShort,
    #[error("non-cash payments exceed the total")]
    NonCashExceedsTotal,
    #[error("zero receipt total")]
    ZeroTotal,
    #[error("bad parameter")]
    BadParameter,
    #[error("document not found")]
    DocumentNotFound,
    #[error("ОФД exchange overdue by 30 days")]
    OfdBlocked,
    #[error("ФН expired")]
    FnExpired,
    #[error("sum overflow")]
    Overflow,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShiftInfo {
    pub open: bool,
    pub number: u32,
    #[serde(default, with = "kkm_core::device::opt_dt")]
    pub opened_at: Option<PrimitiveDateTime>,
}

/// Money registers. Shift registers reset when a shift opens; the drawer does not.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registers {
    pub cash_in_drawer: Money,
    pub cash_ins: Money,
    pub cash_outs: Money,
    pub cash_in_count: u32,
    pub cash_out_count: u32,
    /// `[operation.code()-1][payment index]`.
    pub by_operation: [[Money; 5]; 4],
    pub receipt_count: u32,
    /// Receipts by `[operation.code()-1]`.
    #[serde(default)]
    pub receipts_by_operation: [u32; 4],
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct State {
    identity: EmuIdentity,
    documents: Vec<FiscalDocument>,
    shift: ShiftInfo,
    receipt: Option<OpenReceipt>,
    registers: Registers,
    paper: bool,
    paper_out_on_next_print: bool,
    /// Paper runs out while the next item line prints.
    #[serde(default)]
    paper_out_on_next_line: bool,
    print_interrupted: bool,
    clock_offset_secs: i64,
    ofd_online: bool,
    /// Every printed document, fiscal or not (Shtrih's operating register 152).
    documents_printed: u32,
    last_printed: Vec<String>,
    /// The cashier (tag 1021) for the next shift document, sent before it is made.
    #[serde(default)]
    shift_cashier: Option<String>,
    /// The ФН document that the last copy printed was a copy of (for tests: a copy
    /// owed to a customer must be of that customer's receipt).
    #[serde(default)]
    last_copy_of: Option<u32>,
    /// The ФН document the last print was, if it was a fiscal one.
    #[serde(default)]
    last_printed_document: Option<u32>,
    /// Receipts' content (lines, payments, cashier) by ФД number: the ФН's archive
    /// that TLV reads return.
    #[serde(default)]
    contents: std::collections::BTreeMap<u32, kkm_core::tlv::ReceiptContent>,
}

/// The emulated fiscal core. See the module docs.
pub struct FiscalCore {
    state: State,
    path: Option<PathBuf>,
    utc_offset: UtcOffset,
    print_sink: Option<Box<dyn Fn(&[String]) + Send>>,
    /// The front-end's unit finishes an interrupted print by itself when paper is put
    /// back (no "continue printing" command). Set by the front-end, not persisted.
    resume_on_paper_in: bool,
    /// A TLV read of one document in progress: its records and how far it has been read.
    tlv_read: Option<(Vec<u8>, usize)>,
    /// The ОФД server in the unit's settings (Shtrih table 19). Not persisted: the
    /// emulator process sets it at start (see `kkm-agent emulate`), tests change it.
    ofd_address: (String, u16),
}

fn pay_index(p: PaymentType) -> usize {
    PaymentType::ALL.iter().position(|x| *x == p).unwrap_or(0)
}

fn fnv1a(parts: &[&[u8]]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for part in parts {
        for b in *part {
            h ^= u32::from(*b);
            h = h.wrapping_mul(0x0100_0193);
        }
    }
    h
}

impl FiscalCore {
    /// Loads the state from `path`, or creates a freshly registered unit there.
    /// With no path the state lives in memory only.
    pub fn open(path: Option<&Path>, identity: EmuIdentity) -> std::io::Result<FiscalCore> {
        let utc_offset = UtcOffset::from_hms(3, 0, 0).unwrap_or(UtcOffset::UTC); // Moscow time
        if let Some(p) = path {
            if p.exists() {
                let text = std::fs::read(p)?;
                let state: State = serde_json::from_slice(&text)
                    .map_err(|e| std::io::Error::other(format!("{}: corrupt emulator state: {e}", p.display())))?;
                return Ok(FiscalCore { state, path: Some(p.to_path_buf()), utc_offset, print_sink: None, resume_on_paper_in: false, tlv_read: None, ofd_address: (String::new(), 0) });
            }
        }
        let mut core = FiscalCore {
            state: State {
                identity,
                documents: Vec::new(),
                shift: ShiftInfo::default(),
                receipt: None,
                registers: Registers::default(),
                paper: true,
                paper_out_on_next_print: false,
                paper_out_on_next_line: false,
                print_interrupted: false,
                clock_offset_secs: 0,
                ofd_online: true,
                documents_printed: 0,
                last_printed: Vec::new(),
                shift_cashier: None,
                last_copy_of: None,
                last_printed_document: None,
                contents: Default::default(),
            },
            path: path.map(Path::to_path_buf),
            utc_offset,
            print_sink: None,
            resume_on_paper_in: false,
            tlv_read: None,
            ofd_address: (String::new(), 0),
        };
        core.add_document(DocumentKind::Registration, None, None, None);
        core.save()?;
        Ok(core)
    }

    /// Where printed documents go (the emulator's stdout in `demo`).
    pub fn set_print_sink(&mut self, sink: Box<dyn Fn(&[String]) + Send>) {
        self.print_sink = Some(sink);
    }

    fn save(&self) -> std::io::Result<()> {
        let Some(path) = &self.path else { return Ok(()) };
        let tmp = path.with_extension("tmp");
        let data = serde_json::to_vec_pretty(&self.state).map_err(std::io::Error::other)?;
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&data)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, path)
    }

    fn commit(&mut self) {
        if let Err(e) = self.save() {
            tracing::error!("emulator state not saved: {e}");
        }
    }

    // ----- clock -----

    /// The device's clock: Moscow time plus the injected offset.
    pub fn now(&self) -> PrimitiveDateTime {
        let now = OffsetDateTime::now_utc().to_offset(self.utc_offset) + Duration::seconds(self.state.clock_offset_secs);
        let now = now.replace_nanosecond(0).unwrap_or(now);
        PrimitiveDateTime::new(now.date(), now.time())
    }

    /// Moves the device's clock (`clock +25h` on the control channel).
    pub fn shift_clock(&mut self, by: Duration) {
        self.state.clock_offset_secs = self.state.clock_offset_secs.saturating_add(by.whole_seconds());
        self.commit();
    }

    pub fn reset_clock(&mut self) {
        self.state.clock_offset_secs = 0;
        self.commit();
    }

    // ----- reads -----

    pub fn identity(&self) -> &EmuIdentity {
        &self.state.identity
    }

    pub fn shift(&self) -> &ShiftInfo {
        &self.state.shift
    }

    pub fn shift_state(&self) -> ShiftState {
        match (self.state.shift.open, self.state.shift.opened_at) {
            (false, _) => ShiftState::Closed,
            (true, Some(at)) if self.now() - at > Duration::hours(24) => ShiftState::Expired,
            (true, _) => ShiftState::Open,
        }
    }

    pub fn receipt(&self) -> Option<&OpenReceipt> {
        self.state.receipt.as_ref()
    }

    pub fn registers(&self) -> &Registers {
        &self.state.registers
    }

    pub fn paper_present(&self) -> bool {
        self.state.paper
    }

    /// A fiscalised document did not finish printing and waits for "continue".
    pub fn print_interrupted(&self) -> bool {
        self.state.print_interrupted
    }

    pub fn documents_printed(&self) -> u32 {
        self.state.documents_printed
    }

    pub fn documents(&self) -> &[FiscalDocument] {
        &self.state.documents
    }

    pub fn last_document_number(&self) -> u32 {
        self.state.documents.last().map_or(0, |d| d.number)
    }

    pub fn document(&self, number: u32) -> Result<&FiscalDocument, CoreError> {
        self.state.documents.iter().find(|d| d.number == number).ok_or(CoreError::DocumentNotFound)
    }

    pub fn last_document(&self) -> Option<&FiscalDocument> {
        self.state.documents.last()
    }

    /// Documents not yet acknowledged by the ОФД: (count, oldest).
    pub fn ofd_unsent(&self) -> (u32, Option<&FiscalDocument>) {
        let mut unsent = self.state.documents.iter().filter(|d| !d.ofd_acknowledged);
        let first = unsent.next();
        (first.map_or(0, |_| 1 + unsent.count() as u32), first)
    }

    pub fn ofd_online(&self) -> bool {
        self.state.ofd_online
    }

    /// A JSON snapshot for the control channel and tests.
    pub fn snapshot(&self) -> serde_json::Value {
        serde_json::json!({
            "identity": self.state.identity,
            "shift": self.state.shift,
            "shift_state": self.shift_state(),
            "receipt_open": self.state.receipt.is_some(),
            "paper": self.state.paper,
            "print_interrupted": self.state.print_interrupted,
            "registers": self.state.registers,
            "last_document_number": self.last_document_number(),
            "documents": self.state.documents,
            "clock": kkm_core::device::dt::format(&self.now()),
            "ofd_online": self.state.ofd_online,
            "last_copy_of": self.state.last_copy_of,
        })
    }

    // ----- environment (control channel) -----

    /// Takes the paper out or puts it back. Paper taken out while a receipt is open
    /// interrupts the print of that document: with paper back, a Shtrih unit waits for
    /// "continue printing" (submode 3, [V117] appendix 1) before anything else.
    pub fn set_paper(&mut self, present: bool) {
        self.state.paper = present;
        if !present {
            self.state.paper_out_on_next_print = false;
            self.state.paper_out_on_next_line = false;
            if self.state.receipt.is_some() {
                self.state.print_interrupted = true;
            }
        } else if self.resume_on_paper_in && self.state.print_interrupted {
            // The unit finishes the interrupted document by itself (unconfirmed: see
            // protocol-specs/atol.md); the agent prints the copy it owes.
            self.state.print_interrupted = false;
        }
        self.commit();
    }

    /// Drops paper-outs that a fault armed but no print has triggered yet (`faults
    /// clear` ends every injected fault, including these).
    pub fn disarm_paper_faults(&mut self) {
        self.state.paper_out_on_next_print = false;
        self.state.paper_out_on_next_line = false;
        self.commit();
    }

    /// See [`FiscalCore::resume_on_paper_in`]: for front-ends whose protocol has no
    /// "continue printing" command.
    pub fn set_resume_on_paper_in(&mut self, on: bool) {
        self.resume_on_paper_in = on;
    }

    /// Paper runs out at this op: at a fiscal op, after the ФН has fiscalised it; at an
    /// item line, after the line is registered, while it prints.
    pub fn set_paper_out_after_next_fiscal(&mut self, op: crate::Op) {
        use crate::Op::*;
        if op == ReceiptItem {
            self.state.paper_out_on_next_line = true;
        } else if matches!(op, ReceiptClose | OpenShift | CloseShift) {
            self.state.paper_out_on_next_print = true;
        } else {
            self.state.paper = false;
        }
        self.commit();
    }

    pub fn set_ofd_online(&mut self, online: bool) {
        self.state.ofd_online = online;
        self.sync_ofd();
        self.commit();
    }

    /// The ОФД has not acknowledged anything for `age`: the oldest unsent document is
    /// dated that far back (the ФН counts its 30 days from it). Takes the ОФД offline.
    pub fn set_ofd_unsent_for(&mut self, age: Duration) {
        self.state.ofd_online = false;
        let at = self.now() - age;
        if let Some(d) = self.state.documents.iter_mut().find(|d| !d.ofd_acknowledged) {
            d.datetime = at;
        }
        self.commit();
    }

    /// An engineer replaced the ФН: a new serial, a new archive starting with its
    /// registration document, no shift and no open receipt.
    pub fn replace_fn(&mut self, serial: &str) {
        self.state.identity.fn_serial = serial.to_string();
        self.state.documents.clear();
        self.state.contents.clear();
        self.state.receipt = None;
        self.state.shift.open = false;
        self.add_document(DocumentKind::Registration, None, None, None);
        self.commit();
    }

    /// The ОФД server the unit would send to (`ofd address HOST:PORT`).
    pub fn set_ofd_address(&mut self, host: &str, port: u16) {
        self.ofd_address = (host.to_string(), port);
    }

    pub fn ofd_address(&self) -> (&str, u16) {
        (&self.ofd_address.0, self.ofd_address.1)
    }

    /// The ФН's life ended yesterday (`fn expire`): it refuses new documents.
    pub fn expire_fn(&mut self) {
        self.state.identity.fn_valid_until = self.now().date() - Duration::days(1);
        self.commit();
    }

    /// Writes another РНМ into the unit (`rnm NNNN…`), e.g. one whose check digits do
    /// not match its ЗН and ИНН.
    pub fn set_rnm(&mut self, rnm: &str) {
        self.state.identity.rnm = rnm.to_string();
        self.commit();
    }

    /// Re-registers the unit with another ФФД version (`ffd 1.05`).
    pub fn set_ffd(&mut self, code: u8) {
        self.state.identity.ffd_code = code;
        self.commit();
    }

    /// Re-registers the unit with other tax systems (`tax-systems osn,usn-income`).
    pub fn set_tax_systems(&mut self, mask: u8) {
        self.state.identity.tax_systems = mask;
        self.commit();
    }

    pub fn set_serial_lost(&mut self, lost: bool) {
        self.state.identity.serial_lost = lost;
        self.commit();
    }

    fn sync_ofd(&mut self) {
        if self.state.ofd_online {
            for d in &mut self.state.documents {
                d.ofd_acknowledged = true;
            }
        }
    }

    // ----- guards -----

    fn guard_fn(&self) -> Result<(), CoreError> {
        let now = self.now();
        if now.date() > self.state.identity.fn_valid_until {
            return Err(CoreError::FnExpired);
        }
        if let (_, Some(first)) = self.ofd_unsent() {
            if now - first.datetime > Duration::days(30) {
                return Err(CoreError::OfdBlocked);
            }
        }
        Ok(())
    }

    fn guard_printer(&self) -> Result<(), CoreError> {
        if !self.state.paper {
            return Err(CoreError::PaperOut);
        }
        if self.state.print_interrupted {
            return Err(CoreError::AwaitingContinue);
        }
        Ok(())
    }

    fn guard_shift_open(&self) -> Result<(), CoreError> {
        match self.shift_state() {
            ShiftState::Closed => Err(CoreError::ShiftClosed),
            ShiftState::Expired => Err(CoreError::ShiftExpired),
            ShiftState::Open => Ok(()),
        }
    }

    fn guard_no_receipt(&self) -> Result<(), CoreError> {
        if self.state.receipt.is_some() {
            return Err(CoreError::ReceiptOpen);
        }
        Ok(())
    }

    // ----- printing -----

    fn print(&mut self, lines: Vec<String>, fiscal: bool) {
        self.state.documents_printed = self.state.documents_printed.wrapping_add(1);
        if fiscal && self.state.paper_out_on_next_print {
            // The ФН has the document; the paper ran out halfway through it.
            self.state.paper_out_on_next_print = false;
            self.state.paper = false;
            self.state.print_interrupted = true;
            let half = lines.len() / 2;
            if let Some(sink) = &self.print_sink {
                let mut cut: Vec<String> = lines[..half].to_vec();
                cut.push("~~~~~~ НЕТ БУМАГИ ~~~~~~".into());
                sink(&cut);
            }
        } else if let Some(sink) = &self.print_sink {
            sink(&lines);
        }
        self.state.last_printed = lines;
        self.state.last_printed_document = if fiscal { Some(self.last_document_number()) } else { None };
    }

    /// Prints the last document again (a copy) and clears an interrupted print.
    pub fn print_copy(&mut self) -> Result<(), CoreError> {
        if !self.state.paper {
            return Err(CoreError::PaperOut);
        }
        self.state.print_interrupted = false;
        self.state.last_copy_of = self.state.last_printed_document;
        let mut lines = vec!["КОПИЯ".to_string()];
        lines.extend(self.state.last_printed.iter().cloned());
        if let Some(sink) = &self.print_sink {
            sink(&lines);
        }
        self.commit();
        Ok(())
    }

    /// Finishes an interrupted print (Shtrih B0), or does nothing.
    pub fn continue_print(&mut self) -> Result<(), CoreError> {
        if !self.state.paper {
            return Err(CoreError::PaperOut);
        }
        if self.state.print_interrupted && self.state.receipt.is_some() {
            // Mid-receipt: the rest of the line prints; the receipt stays open.
            self.state.print_interrupted = false;
            self.commit();
            return Ok(());
        }
        if self.state.print_interrupted {
            return self.print_copy();
        }
        Ok(())
    }

    pub fn print_text(&mut self, lines: Vec<String>) -> Result<(), CoreError> {
        self.guard_printer()?;
        self.print(lines, false);
        self.commit();
        Ok(())
    }

    // ----- documents -----

    fn add_document(
        &mut self,
        kind: DocumentKind,
        operation: Option<Operation>,
        total: Option<Money>,
        shift_number: Option<u32>,
    ) -> FiscalDocument {
        let number = self.last_document_number() + 1;
        // The ФН keeps document time to the minute.
        let now = self.now();
        let datetime = now.replace_second(0).unwrap_or(now);
        let total_k = total.map_or(0, |t| t.0);
        let sign = fnv1a(&[
            self.state.identity.fn_serial.as_bytes(),
            &number.to_le_bytes(),
            kkm_core::device::dt::format(&datetime).as_bytes(),
            &total_k.to_le_bytes(),
        ]);
        let doc = FiscalDocument {
            number,
            kind,
            datetime,
            fiscal_sign: sign,
            operation,
            total,
            shift_number,
            ofd_acknowledged: false,
            reference: None,
        };
        self.state.documents.push(doc.clone());
        self.sync_ofd();
        doc
    }

    // ----- operations -----

    pub fn open_shift(&mut self) -> Result<FiscalDocument, CoreError> {
        self.guard_fn()?;
        if self.state.shift.open {
            return Err(CoreError::ShiftAlreadyOpen);
        }
        self.guard_printer()?;
        let number = self.state.shift.number + 1;
        self.state.shift = ShiftInfo { open: true, number, opened_at: Some(self.now()) };
        let drawer = self.state.registers.cash_in_drawer;
        self.state.registers = Registers { cash_in_drawer: drawer, ..Registers::default() };
        let doc = self.add_document(DocumentKind::ShiftOpen, None, None, Some(number));
        let lines = printer::with_cashier(printer::shift_open(&self.state.identity, &doc), self.state.shift_cashier.take());
        self.print(lines, true);
        self.commit();
        Ok(doc)
    }

    /// Z-report: closes the shift (allowed after 24 h; that is the way out).
    pub fn close_shift(&mut self) -> Result<FiscalDocument, CoreError> {
        if !self.state.shift.open {
            return Err(CoreError::ShiftClosed);
        }
        self.guard_no_receipt()?;
        self.guard_printer()?;
        let number = self.state.shift.number;
        self.state.shift.open = false;
        let doc = self.add_document(DocumentKind::ShiftClose, None, None, Some(number));
        let lines = printer::shift_report(&self.state.identity, &self.state.registers, number, Some(&doc), self.now());
        let lines = printer::with_cashier(lines, self.state.shift_cashier.take());
        self.print(lines, true);
        self.commit();
        Ok(doc)
    }

    pub fn x_report(&mut self) -> Result<(), CoreError> {
        self.guard_no_receipt()?;
        self.guard_printer()?;
        let lines =
            printer::shift_report(&self.state.identity, &self.state.registers, self.state.shift.number, None, self.now());
        self.print(lines, false);
        self.commit();
        Ok(())
    }

    pub fn cash_in(&mut self, sum: Money) -> Result<u32, CoreError> {
        self.cash_move(sum, true)
    }

    pub fn cash_out(&mut self, sum: Money) -> Result<u32, CoreError> {
        self.cash_move(sum, false)
    }

    fn cash_move(&mut self, sum: Money, inward: bool) -> Result<u32, CoreError> {
        if sum.0 <= 0 {
            return Err(CoreError::BadParameter);
        }
        self.guard_shift_open()?;
        self.guard_no_receipt()?;
        self.guard_printer()?;
        let r = &mut self.state.registers;
        if inward {
            r.cash_in_drawer = r.cash_in_drawer.checked_add(sum).ok_or(CoreError::Overflow)?;
            r.cash_ins = r.cash_ins.checked_add(sum).ok_or(CoreError::Overflow)?;
            r.cash_in_count += 1;
        } else {
            if sum > r.cash_in_drawer {
                return Err(CoreError::NotEnoughCash);
            }
            r.cash_in_drawer = Money(r.cash_in_drawer.0 - sum.0);
            r.cash_outs = r.cash_outs.checked_add(sum).ok_or(CoreError::Overflow)?;
            r.cash_out_count += 1;
        }
        let lines = printer::cash_move(&self.state.identity, sum, inward, self.now());
        self.print(lines, false);
        self.commit();
        Ok(self.state.documents_printed)
    }

    pub fn open_receipt(&mut self, operation: Operation) -> Result<(), CoreError> {
        self.guard_fn()?;
        self.guard_no_receipt()?;
        self.guard_shift_open()?;
        self.guard_printer()?;
        self.state.receipt =
            Some(OpenReceipt { operation, lines: Vec::new(), payments: [Money::ZERO; 5], cashier: None, contact: None, reference: None });
        self.commit();
        Ok(())
    }

    pub fn add_line(&mut self, line: ReceiptLine) -> Result<(), CoreError> {
        self.guard_printer()?;
        if line.quantity.0 <= 0 || line.price.0 < 0 || line.amount.0 < 0 || line.name.chars().count() > 128 {
            return Err(CoreError::BadParameter);
        }
        if !(0..=16).contains(&line.department) {
            return Err(CoreError::BadParameter);
        }
        let r = self.state.receipt.as_mut().ok_or(CoreError::NoReceipt)?;
        if r.lines.len() >= 1000 {
            return Err(CoreError::Overflow);
        }
        r.total().checked_add(line.amount).filter(|t| t.0 <= 9_999_999_999).ok_or(CoreError::Overflow)?;
        r.lines.push(line);
        if self.state.paper_out_on_next_line {
            // The line is registered; the paper ran out while it printed.
            self.state.paper_out_on_next_line = false;
            self.state.paper = false;
            self.state.print_interrupted = true;
        }
        self.commit();
        Ok(())
    }

    /// The cashier (tag 1021) of the next shift document (open or close shift).
    pub fn set_shift_cashier(&mut self, cashier: Option<String>) {
        self.state.shift_cashier = cashier;
        self.commit();
    }

    /// Tag 2108 for the last line of the open receipt.
    pub fn set_last_line_measure_unit(&mut self, unit: u8) -> Result<(), CoreError> {
        let r = self.state.receipt.as_mut().ok_or(CoreError::NoReceipt)?;
        let line = r.lines.last_mut().ok_or(CoreError::BadParameter)?;
        line.measure_unit = Some(unit);
        self.commit();
        Ok(())
    }

    /// Attaches the cashier's name or the customer's contact (tags 1021, 1008).
    pub fn set_receipt_attribute(&mut self, cashier: Option<String>, contact: Option<String>) -> Result<(), CoreError> {
        let r = self.state.receipt.as_mut().ok_or(CoreError::NoReceipt)?;
        if cashier.is_some() {
            r.cashier = cashier;
        }
        if contact.is_some() {
            r.contact = contact;
        }
        self.commit();
        Ok(())
    }

    /// Attaches the client's reference (УМКА tag 1192); the ФН keeps it in the document.
    pub fn set_receipt_reference(&mut self, reference: Option<String>) -> Result<(), CoreError> {
        let r = self.state.receipt.as_mut().ok_or(CoreError::NoReceipt)?;
        r.reference = reference;
        self.commit();
        Ok(())
    }

    pub fn add_payment(&mut self, kind: PaymentType, sum: Money) -> Result<(), CoreError> {
        if sum.0 < 0 {
            return Err(CoreError::BadParameter);
        }
        let r = self.state.receipt.as_mut().ok_or(CoreError::NoReceipt)?;
        let slot = &mut r.payments[pay_index(kind)];
        *slot = slot.checked_add(sum).filter(|t| t.0 <= 9_999_999_999).ok_or(CoreError::Overflow)?;
        self.commit();
        Ok(())
    }

    /// Replaces the payments of the open receipt (Shtrih's FF45 sends them all at once).
    pub fn set_payments(&mut self, payments: [Money; 5]) -> Result<(), CoreError> {
        if payments.iter().any(|m| m.0 < 0 || m.0 > 9_999_999_999) {
            return Err(CoreError::BadParameter);
        }
        let r = self.state.receipt.as_mut().ok_or(CoreError::NoReceipt)?;
        r.payments = payments;
        Ok(())
    }

    /// Closes the open receipt: the ФН fiscalises it and the printer prints it.
    /// Returns the document and the change (сдача).
    pub fn close_receipt(&mut self) -> Result<(FiscalDocument, Money), CoreError> {
        let r = self.state.receipt.as_ref().ok_or(CoreError::NoReceipt)?;
        self.guard_fn()?;
        self.guard_printer()?;
        let total = r.total();
        if total.0 == 0 {
            return Err(CoreError::ZeroTotal);
        }
        let paid: i64 = r.payments.iter().map(|m| m.0).sum();
        let cash = r.payments[0];
        let non_cash = paid - cash.0;
        if paid < total.0 {
            return Err(CoreError::PaymentsShort);
        }
        if non_cash > total.0 {
            return Err(CoreError::NonCashExceedsTotal);
        }
        let change = Money(paid - total.0);
        let cash_net = Money(cash.0 - change.0);
        let op = r.operation;
        if !op.is_income() && cash_net > self.state.registers.cash_in_drawer {
            return Err(CoreError::NotEnoughCash);
        }
        let receipt = self.state.receipt.take().ok_or(CoreError::NoReceipt)?;
        let regs = &mut self.state.registers;
        let row = &mut regs.by_operation[usize::from(op.code() - 1)];
        for (i, m) in receipt.payments.iter().enumerate() {
            let v = if i == 0 { cash_net } else { *m };
            row[i] = Money(row[i].0.saturating_add(v.0));
        }
        regs.cash_in_drawer = if op.is_income() {
            Money(regs.cash_in_drawer.0.saturating_add(cash_net.0))
        } else {
            Money(regs.cash_in_drawer.0 - cash_net.0)
        };
        regs.receipt_count += 1;
        regs.receipts_by_operation[usize::from(op.code() - 1)] += 1;
        let shift = self.state.shift.number;
        let mut doc = self.add_document(DocumentKind::Receipt, Some(op), Some(total), Some(shift));
        if receipt.reference.is_some() {
            doc.reference = receipt.reference.clone();
            if let Some(d) = self.state.documents.last_mut() {
                d.reference = receipt.reference.clone();
            }
        }
        let mut payments: Vec<(PaymentType, Money)> = Vec::new();
        for (i, m) in receipt.payments.iter().enumerate() {
            let v = if i == 0 { cash_net } else { *m };
            if v.0 != 0 {
                payments.push((PaymentType::ALL[i], v));
            }
        }
        let content = kkm_core::tlv::ReceiptContent {
            operation: Some(op),
            total: Some(total),
            payments,
            items: receipt
                .lines
                .iter()
                .map(|l| kkm_core::tlv::ContentItem { name: l.name.clone(), price: l.price, quantity: l.quantity, amount: l.amount })
                .collect(),
            cashier: receipt.cashier.clone(),
        };
        self.state.contents.insert(doc.number, content);
        let lines = printer::receipt(&self.state.identity, &receipt, &doc, change);
        self.print(lines, true);
        self.commit();
        Ok((doc, change))
    }

    pub fn cancel_receipt(&mut self) -> Result<(), CoreError> {
        if self.state.receipt.is_none() {
            return Err(CoreError::NoReceipt);
        }
        // The cancellation is printed, so an interrupted print must be finished first
        // ([V117]: 0x58 for any printing command while awaiting "continue printing").
        if self.state.print_interrupted && self.state.paper {
            return Err(CoreError::AwaitingContinue);
        }
        self.state.receipt = None;
        if self.state.paper {
            self.print(vec!["ЧЕК АННУЛИРОВАН".into()], false);
        }
        self.commit();
        Ok(())
    }

    /// A receipt punched on the unit's own keypad (or by another program): one line,
    /// one payment. The agent did not ask for it; reconciliation and recovery must
    /// tell it apart from the agent's own.
    pub fn keypad_receipt(&mut self, operation: Operation, total: Money, payment: PaymentType) -> Result<FiscalDocument, CoreError> {
        if total.0 <= 0 {
            return Err(CoreError::BadParameter);
        }
        self.open_receipt(operation)?;
        let line = ReceiptLine {
            name: "Услуга (с клавиатуры ККТ)".into(),
            price: total,
            quantity: Quantity(1000),
            amount: total,
            vat: VatRate::NoVat,
            department: 1,
            payment_method: 4,
            payment_object: 4,
            measure_unit: None,
        };
        let closed = self.add_line(line).and_then(|_| {
            let mut payments = [Money::ZERO; 5];
            payments[pay_index(payment)] = total;
            self.set_payments(payments)?;
            self.close_receipt()
        });
        match closed {
            Ok((doc, _)) => Ok(doc),
            Err(e) => {
                let _ = self.cancel_receipt();
                Err(e)
            }
        }
    }

    /// Receipts of one operation in the shift.
    pub fn receipts_of(&self, op: Operation) -> u32 {
        self.state.registers.receipts_by_operation[usize::from(op.code() - 1)]
    }

    /// Starts reading a document's TLV (Shtrih FF3A): its ФФД type (3 for a receipt) and
    /// length. Documents other than receipts are given with no records.
    pub fn start_tlv_read(&mut self, number: u32) -> Result<(u16, u16), CoreError> {
        self.start_tlv_read_inner(number)
    }

    /// What the ФН keeps of receipt `number` (lines, payments, cashier), for front-ends
    /// that give documents as structured data (УМКА `fiscaldoc.json`).
    pub fn receipt_content(&self, number: u32) -> Option<&kkm_core::tlv::ReceiptContent> {
        self.state.contents.get(&number)
    }

    fn start_tlv_read_inner(&mut self, number: u32) -> Result<(u16, u16), CoreError> {
        let d = self.document(number)?;
        let doc_type = kkm_core::tlv::document_type(d.kind);
        let data = self.state.contents.get(&number).map(kkm_core::tlv::encode_receipt).unwrap_or_default();
        let len = data.len().min(usize::from(u16::MAX)) as u16;
        self.tlv_read = Some((data, 0));
        Ok((doc_type, len))
    }

    /// The next block of the document being read (Shtrih FF3B); `DocumentNotFound`
    /// (the ФН's "no data") when it is all read or no read was started.
    pub fn next_tlv_block(&mut self, max: usize) -> Result<Vec<u8>, CoreError> {
        let (data, at) = self.tlv_read.as_mut().ok_or(CoreError::DocumentNotFound)?;
        if *at >= data.len() {
            self.tlv_read = None;
            return Err(CoreError::DocumentNotFound);
        }
        let end = (*at + max).min(data.len());
        let block = data[*at..end].to_vec();
        *at = end;
        Ok(block)
    }

    /// Money registers by operation and payment type.
    pub fn sum(&self, op: Operation, pay: PaymentType) -> Money {
        self.state.registers.by_operation[usize::from(op.code() - 1)][pay_index(pay)]
    }
}

mod date_fmt {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::macros::format_description;
    use time::Date;
    const F: &[time::format_description::FormatItem<'static>] = format_description!("[year]-[month]-[day]");
    pub fn serialize<S: Serializer>(v: &Date, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.format(F).map_err(serde::ser::Error::custom)?)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Date, D::Error> {
        let s = String::deserialize(d)?;
        Date::parse(&s, F).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn core() -> FiscalCore {
        FiscalCore::open(None, EmuIdentity::new("АЗУР-01Ф", "0000000045012345", "9960440300012345")).unwrap()
    }

    fn line(amount: i64, vat: VatRate) -> ReceiptLine {
        ReceiptLine {
            name: "Стрижка".into(),
            price: Money(amount),
            quantity: Quantity::ONE,
            amount: Money(amount),
            vat,
            department: 1,
            payment_method: 4,
            payment_object: 4,
            measure_unit: None,
        }
    }

    #[test]
    fn sale_moves_registers_and_numbers_documents() {
        let mut c = core();
        assert_eq!(c.last_document_number(), 1);
        assert_eq!(c.open_receipt(Operation::Sale), Err(CoreError::ShiftClosed));
        c.open_shift().unwrap();
        c.open_receipt(Operation::Sale).unwrap();
        c.add_line(line(150_000, VatRate::Vat22)).unwrap();
        c.add_payment(PaymentType::Cash, Money(200_000)).unwrap();
        let (doc, change) = c.close_receipt().unwrap();
        assert_eq!(doc.number, 3);
        assert_eq!(change, Money(50_000));
        assert_eq!(c.registers().cash_in_drawer, Money(150_000));
        assert_eq!(c.sum(Operation::Sale, PaymentType::Cash), Money(150_000));
    }

    #[test]
    fn shift_expires_after_24h() {
        let mut c = core();
        c.open_shift().unwrap();
        c.shift_clock(Duration::hours(25));
        assert_eq!(c.shift_state(), ShiftState::Expired);
        assert_eq!(c.open_receipt(Operation::Sale), Err(CoreError::ShiftExpired));
        c.close_shift().unwrap();
        assert_eq!(c.shift_state(), ShiftState::Closed);
    }

    #[test]
    fn paper_out_after_fiscalisation_keeps_document() {
        let mut c = core();
        c.open_shift().unwrap();
        c.set_paper_out_after_next_fiscal(crate::Op::ReceiptClose);
        c.open_receipt(Operation::Sale).unwrap();
        c.add_line(line(1000, VatRate::Vat10)).unwrap();
        c.add_payment(PaymentType::Electronic, Money(1000)).unwrap();
        let (doc, _) = c.close_receipt().unwrap();
        assert!(c.print_interrupted());
        assert_eq!(c.open_receipt(Operation::Sale), Err(CoreError::PaperOut));
        c.set_paper(true);
        c.continue_print().unwrap();
        assert!(!c.print_interrupted());
        assert_eq!(c.last_document_number(), doc.number);
    }

    #[test]
    fn state_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("emu.json");
        let id = EmuIdentity::new("Нева-01-Ф", "18001234", "9960440300054321");
        {
            let mut c = FiscalCore::open(Some(&p), id.clone()).unwrap();
            c.open_shift().unwrap();
        }
        let c = FiscalCore::open(Some(&p), id).unwrap();
        assert_eq!(c.last_document_number(), 2);
        assert_eq!(c.shift_state(), ShiftState::Open);
    }

    #[test]
    fn ofd_blocks_after_30_days() {
        let mut c = core();
        c.set_ofd_online(false);
        c.open_shift().unwrap();
        assert_eq!(c.ofd_unsent().0, 1);
        c.shift_clock(Duration::days(31));
        c.close_shift().unwrap();
        assert_eq!(c.open_shift(), Err(CoreError::OfdBlocked));
    }
}
