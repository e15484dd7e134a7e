//! # kkm-emu: the fiscal core behind both register emulators
//!
//! A real register is two things: a fiscal core (the ФН with its numbered documents,
//! the shift, the money registers, the printer) and a wire protocol in front of it.
//! This crate is the first part, written once. `kkm-shtrih` and `kkm-atol` each put
//! their protocol in front of it by implementing [`WireDevice`]; neither keeps its own
//! fiscal state.
//!
//! * [`fiscal`]: the ФН and shift state machine ([`FiscalCore`]), persisted to a file so
//!   that it survives restarts like a real ФН.
//! * [`faults`]: faults a test or an engineer injects (lost answers, corrupted
//!   checksums, NAK storms, link drops, power cuts, paper running out).
//! * [`printer`]: renders documents as the paper tape a cashier would see.
//! * [`control`]: a line-based control channel (`paper out`, `clock +25h`,
//!   `fault lose-answer@receipt-close`) for tests and for the CLI.
//! * [`listen`]: serves a [`WireDevice`] on a pseudo-terminal or a TCP port.
//!
//! The emulators are product code: `kkm-agent demo` runs on them so that a newcomer sees
//! the agent work with no hardware.

pub mod control;
pub mod faults;
pub mod fiscal;
pub mod listen;
pub mod printer;

pub use faults::{AnswerFault, FaultPlan, FaultSpec, Op, RequestFault};
pub use fiscal::{CoreError, EmuIdentity, FiscalCore, OpenReceipt, ReceiptLine};
pub use listen::{Listen, WireDevice};

use std::sync::{Arc, Mutex, MutexGuard};

/// One emulated register: the fiscal core and the fault plan, shared by the protocol
/// front-end, the control channel and the listener.
pub struct Emulator {
    core: Mutex<FiscalCore>,
    faults: Mutex<FaultPlan>,
}

impl Emulator {
    pub fn new(core: FiscalCore) -> Arc<Emulator> {
        Arc::new(Emulator { core: Mutex::new(core), faults: Mutex::new(FaultPlan::default()) })
    }

    /// Locks the fiscal core. Never hold the guard across an `.await`.
    pub fn core(&self) -> MutexGuard<'_, FiscalCore> {
        self.core.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn faults(&self) -> MutexGuard<'_, FaultPlan> {
        self.faults.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Called by a front-end when a well-formed host request for `op` arrives, before it
    /// runs. Also applies `paper-out@op` faults to the core.
    pub fn on_request(&self, op: Op) -> RequestFault {
        let (fault, paper_out) = self.faults().on_request(op);
        if paper_out {
            self.core().set_paper_out_after_next_fiscal(op);
        }
        fault
    }

    /// Called by a front-end after executing `op`, before answering.
    pub fn on_answer(&self, op: Op) -> AnswerFault {
        self.faults().on_answer(op)
    }

    /// A step inside one request: applies a `paper-out@op` fault, nothing else.
    pub fn on_step_request(&self, op: Op) {
        if self.faults().take_paper_out(op) {
            self.core().set_paper_out_after_next_fiscal(op);
        }
    }

    /// A step inside one request (see [`FaultPlan::on_step`]).
    pub fn on_step(&self, op: Op) -> AnswerFault {
        self.faults().on_step(op)
    }

    /// Extra delay before each answer.
    pub fn answer_delay(&self) -> std::time::Duration {
        self.faults().delay()
    }
}
