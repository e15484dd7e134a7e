//! Faults injected into an emulator, from tests or from `--fault` on the command line.
//!
//! The faults are the ones that break real cash desks: a cable pulled after the device
//! executed a command but before its answer arrived, a power cut in the middle of a
//! receipt, line noise corrupting checksums, a device that NAKs everything for a while,
//! a slow device, and paper running out while a fiscalised receipt prints.
//!
//! A fault names the operation it waits for in protocol-neutral terms ([`Op`]), so one
//! spec works for both emulators: `lose-answer@receipt-close` loses the answer to
//! Shtrih's FF45 and to ATOL's 4A alike.
//!
//! Spec grammar: `KIND[@OP][=VALUE]`:
//!
//! | spec | effect |
//! |---|---|
//! | `delay=MS` | every answer is delayed by MS milliseconds (`delay=0` clears) |
//! | `nak=N` | the next N host frames are refused at the link level (NAK) |
//! | `corrupt=N` | the next N answers go out with a broken checksum |
//! | `lose-answer[@OP]` | the next OP runs, but its answer is not sent (it stays pending) |
//! | `drop-link[@OP][=S]` | the next OP runs, then the link is down for S seconds (default 2) |
//! | `power-cut[@OP][=S]` | the next OP runs, then the power is off for S seconds: the link state is lost |
//! | `paper-out[@OP]` | paper runs out at OP; at a fiscal OP or an item line, after it is registered, while it prints |
//! | `power-cut-before[@OP][=S]` | the power goes off as the next OP's frame arrives: the unit never runs it, and is off for S seconds (default 2). Shtrih front-end only |
//! | `garble-ack[@OP]` | the unit accepts the next OP's frame but its link-level acknowledgement reaches the host as noise (a corrupted ACK); the command runs once |
//!
//! Without `@OP` a fault waits for the next operation that changes state (not a
//! status or query), so a status poll does not absorb it.

use std::time::Duration;

/// What a host request does, in protocol-neutral terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Status,
    Query,
    OpenShift,
    CloseShift,
    XReport,
    CashIn,
    CashOut,
    ReceiptOpen,
    ReceiptItem,
    ReceiptPayment,
    ReceiptClose,
    ReceiptCancel,
    Print,
    Other,
}

impl Op {
    pub const ALL: [Op; 14] = [
        Op::Status,
        Op::Query,
        Op::OpenShift,
        Op::CloseShift,
        Op::XReport,
        Op::CashIn,
        Op::CashOut,
        Op::ReceiptOpen,
        Op::ReceiptItem,
        Op::ReceiptPayment,
        Op::ReceiptClose,
        Op::ReceiptCancel,
        Op::Print,
        Op::Other,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Op::Status => "status",
            Op::Query => "query",
            Op::OpenShift => "open-shift",
            Op::CloseShift => "close-shift",
            Op::XReport => "x-report",
            Op::CashIn => "cash-in",
            Op::CashOut => "cash-out",
            Op::ReceiptOpen => "receipt-open",
            Op::ReceiptItem => "receipt-item",
            Op::ReceiptPayment => "receipt-payment",
            Op::ReceiptClose => "receipt-close",
            Op::ReceiptCancel => "receipt-cancel",
            Op::Print => "print",
            Op::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|op| op.name() == s)
    }

    /// Reads and status polls do not change the device.
    pub fn changes_state(self) -> bool {
        !matches!(self, Op::Status | Op::Query)
    }
}

/// What the front-end should do with a host request before running it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestFault {
    None,
    /// Refuse the frame at the link level, as if its checksum were wrong.
    Nak,
    /// Accept and run the frame, but send a garbage byte where the ACK belongs.
    GarbleAck,
    /// The power goes off as the frame arrives: it never runs.
    PowerCutBefore(Duration),
}

/// What the front-end should do with an answer after running the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerFault {
    Send,
    /// Send it with a broken checksum.
    Corrupt,
    /// Do not send it; keep it pending, as a device does when the host never saw it.
    Lose,
    /// Do not send it; the link is down for this long. The answer stays pending.
    DropLink(Duration),
    /// Do not send it; the power is off for this long. Link state is lost.
    PowerCut(Duration),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    Delay(Duration),
    Nak(u32),
    Corrupt(u32),
    LoseAnswer,
    DropLink(Duration),
    PowerCut(Duration),
    PaperOut,
    GarbleAck,
    PowerCutBefore(Duration),
}

/// One parsed fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultSpec {
    pub kind: FaultKind,
    pub on: Option<Op>,
}

impl FaultSpec {
    pub fn parse(text: &str) -> Result<FaultSpec, String> {
        let t = text.trim();
        let (head, value) = match t.split_once('=') {
            Some((h, v)) => (h, Some(v)),
            None => (t, None),
        };
        let (kind, on) = match head.split_once('@') {
            Some((k, op)) => (k, Some(Op::parse(op).ok_or_else(|| format!("unknown operation {op:?}"))?)),
            None => (head, None),
        };
        let number = |default: u64| -> Result<u64, String> {
            match value {
                None => Ok(default),
                Some(v) => v.parse::<u64>().map_err(|_| format!("{t:?}: {v:?} is not a number")),
            }
        };
        let secs = |default: u64| -> Result<Duration, String> {
            let s = number(default)?;
            if s > 3600 {
                return Err(format!("{t:?}: at most 3600 seconds"));
            }
            Ok(Duration::from_secs(s))
        };
        let count = || -> Result<u32, String> {
            u32::try_from(number(3)?.min(10_000)).map_err(|_| format!("{t:?}: count too large"))
        };
        let kind = match kind {
            "delay" => FaultKind::Delay(Duration::from_millis(number(0)?.min(600_000))),
            "nak" => FaultKind::Nak(count()?),
            "corrupt" => FaultKind::Corrupt(count()?),
            "lose-answer" => FaultKind::LoseAnswer,
            "drop-link" => FaultKind::DropLink(secs(2)?),
            "power-cut" => FaultKind::PowerCut(secs(2)?),
            "paper-out" => FaultKind::PaperOut,
            "garble-ack" => FaultKind::GarbleAck,
            "power-cut-before" => FaultKind::PowerCutBefore(secs(2)?),
            other => return Err(format!("unknown fault {other:?}")),
        };
        Ok(FaultSpec { kind, on })
    }
}

/// The faults waiting to happen.
#[derive(Debug, Default)]
pub struct FaultPlan {
    delay: Duration,
    naks: u32,
    corrupts: u32,
    /// One-shot faults, in the order injected.
    pending: Vec<FaultSpec>,
}

impl FaultPlan {
    pub fn inject(&mut self, spec: FaultSpec) {
        match spec.kind {
            FaultKind::Delay(d) => self.delay = d,
            FaultKind::Nak(n) => self.naks = self.naks.saturating_add(n),
            FaultKind::Corrupt(n) => self.corrupts = self.corrupts.saturating_add(n),
            _ => self.pending.push(spec),
        }
    }

    pub fn clear(&mut self) {
        *self = FaultPlan::default();
    }

    pub fn delay(&self) -> Duration {
        self.delay
    }

    pub fn is_idle(&self) -> bool {
        self.naks == 0 && self.corrupts == 0 && self.pending.is_empty()
    }

    fn take(&mut self, op: Op, want: impl Fn(&FaultKind) -> bool) -> Option<FaultKind> {
        let matches = |s: &FaultSpec| want(&s.kind) && s.on.map_or(op.changes_state(), |o| o == op);
        let i = self.pending.iter().position(matches)?;
        Some(self.pending.remove(i).kind)
    }

    /// Returns the link-level fault and whether paper runs out at this op.
    pub fn on_request(&mut self, op: Op) -> (RequestFault, bool) {
        if self.naks > 0 {
            self.naks -= 1;
            return (RequestFault::Nak, false);
        }
        if let Some(FaultKind::PowerCutBefore(d)) = self.take(op, |k| matches!(k, FaultKind::PowerCutBefore(_))) {
            return (RequestFault::PowerCutBefore(d), false);
        }
        let paper = self.take(op, |k| matches!(k, FaultKind::PaperOut)).is_some();
        if self.take(op, |k| matches!(k, FaultKind::GarbleAck)).is_some() {
            return (RequestFault::GarbleAck, paper);
        }
        (RequestFault::None, paper)
    }

    /// Whether paper runs out at `op`, leaving link-level faults alone (a step inside
    /// one request).
    pub fn take_paper_out(&mut self, op: Op) -> bool {
        self.take(op, |k| matches!(k, FaultKind::PaperOut)).is_some()
    }

    /// Only the one-shot faults that end the exchange (lose, drop, power cut) at `op`,
    /// leaving corruption counters alone: for a step inside one request (an item line
    /// of an HTTP receipt), where there is no answer to corrupt.
    pub fn on_step(&mut self, op: Op) -> AnswerFault {
        match self.take(op, |k| matches!(k, FaultKind::LoseAnswer | FaultKind::DropLink(_) | FaultKind::PowerCut(_))) {
            Some(FaultKind::LoseAnswer) => AnswerFault::Lose,
            Some(FaultKind::DropLink(d)) => AnswerFault::DropLink(d),
            Some(FaultKind::PowerCut(d)) => AnswerFault::PowerCut(d),
            _ => AnswerFault::Send,
        }
    }

    pub fn on_answer(&mut self, op: Op) -> AnswerFault {
        let fault = self.take(op, |k| {
            matches!(k, FaultKind::LoseAnswer | FaultKind::DropLink(_) | FaultKind::PowerCut(_))
        });
        match fault {
            Some(FaultKind::LoseAnswer) => AnswerFault::Lose,
            Some(FaultKind::DropLink(d)) => AnswerFault::DropLink(d),
            Some(FaultKind::PowerCut(d)) => AnswerFault::PowerCut(d),
            _ if self.corrupts > 0 => {
                self.corrupts -= 1;
                AnswerFault::Corrupt
            }
            _ => AnswerFault::Send,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_specs() {
        assert_eq!(
            FaultSpec::parse("lose-answer@receipt-close").unwrap(),
            FaultSpec { kind: FaultKind::LoseAnswer, on: Some(Op::ReceiptClose) }
        );
        assert_eq!(FaultSpec::parse("nak=5").unwrap().kind, FaultKind::Nak(5));
        assert_eq!(FaultSpec::parse("power-cut@receipt-item=1").unwrap().kind, FaultKind::PowerCut(Duration::from_secs(1)));
        assert_eq!(FaultSpec::parse("garble-ack@receipt-item").unwrap().kind, FaultKind::GarbleAck);
        assert!(FaultSpec::parse("explode").is_err());
        assert!(FaultSpec::parse("drop-link=x").is_err());
        assert!(FaultSpec::parse("lose-answer@nope").is_err());
    }

    #[test]
    fn status_polls_do_not_absorb_faults() {
        let mut p = FaultPlan::default();
        p.inject(FaultSpec::parse("lose-answer").unwrap());
        assert_eq!(p.on_answer(Op::Status), AnswerFault::Send);
        assert_eq!(p.on_answer(Op::ReceiptItem), AnswerFault::Lose);
        assert_eq!(p.on_answer(Op::ReceiptItem), AnswerFault::Send);
    }
}
