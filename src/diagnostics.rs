//! Diagnostics for field engineers, built in.
//!
//! * [`detect`]: which protocol and speed a port really speaks, and whether another
//!   program holds it. Probes only send requests that cannot print or fiscalise.
//! * [`health`]: reads a device's identity, ФН, ОФД queue, shift, clock and paper, and
//!   turns them into findings in Russian with the action to take: a lost factory number,
//!   РНМ check digits that do not match ЗН + ИНН, ФН expiry, documents stuck unsent to
//!   the ОФД with the date the ФН will block, whether this PC reaches the ОФД server the
//!   register names, a shift about to pass 24 hours, a clock off the PC's, no paper.
//!
//! * [`ports`], [`scan`], [`agent`], [`report`], [`support_file`]: `kkm-agent diag`,
//!   which looks on every port at once, names programs that hold a port, asks the
//!   running agent about its queues, and writes a redacted file for support.
//!
//! The rules in [`health::evaluate`] are pure functions of what the device reported and
//! the PC's clock, so they are tested without a device; the reading goes through the
//! driver trait, so the same code serves Azur-01F and Neva-01-F. The register's clock is
//! local time in its own zone ([`health::DeviceZone`]); the PC's is taken as an instant,
//! so the PC's zone never enters a finding.

pub mod agent;
pub mod detect;
pub mod health;
pub mod ports;
pub mod report;
pub mod scan;
pub mod support_file;

use std::sync::OnceLock;
use time::{OffsetDateTime, UtcOffset};

static LOCAL_OFFSET: OnceLock<UtcOffset> = OnceLock::new();

/// Reads the PC's time zone. Call once from `main` before any thread starts: the `time`
/// crate refuses to read it later on Unix, because another thread could change it.
pub fn init_local_offset() {
    let offset = UtcOffset::current_local_offset().unwrap_or(UtcOffset::UTC);
    let _ = LOCAL_OFFSET.set(offset);
}

/// The PC's clock as an instant (in the PC's zone where known; the zone does not change
/// the instant), for [`health::evaluate`].
pub fn pc_now() -> OffsetDateTime {
    OffsetDateTime::now_utc().to_offset(*LOCAL_OFFSET.get_or_init(|| UtcOffset::UTC))
}
