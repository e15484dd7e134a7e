//! # kkm-core
//!
//! What every fiscal-register driver shares, whatever wire protocol it speaks:
//!
//! * [`money`]: money as integer kopecks and quantities as fixed-point thousandths.
//!   There is no floating point anywhere near money.
//! * [`receipt`]: the receipt (чек) the shop program asks us to fiscalise, with its
//!   validation. This is the one serde type the HTTP API and the CLI accept.
//! * [`device`]: what a register tells us about itself: identity (ЗН, РНМ, ИНН, ФН),
//!   status, the fiscal storage (ФН) and its numbered fiscal documents.
//! * [`error`]: driver errors, each with a stable code, Russian and English text and
//!   the action a cashier or an engineer should take.
//! * [`driver`]: the [`driver::FiscalDriver`] trait that each model implements.
//! * [`port`]: where a device lives (serial, USB virtual COM, TCP) and how to open it.
//! * [`platform`]: the only place with OS-specific code.
//! * [`checks`]: check digits of ИНН and РНМ, used by diagnostics.
//! * [`text`]: which characters a register can print, mapped or refused, never HTML.
//! * [`capture`], [`capture_text`]: a sniffed port capture, read from text and decoded
//!   by the protocol crates (`kkm-agent decode`).
//!
//! The trait is shaped by the domain (open a shift, fiscalise a receipt, find a fiscal
//! document by number), not by any one protocol: the Shtrih-M driver builds a receipt
//! from FF46/FF45 commands, the ATOL driver from 92/EA/EB/99/4A, and both look the same
//! from here.

pub mod capture;
pub mod capture_text;
pub mod checks;
pub mod device;
pub mod driver;
pub mod error;
pub mod money;
pub mod platform;
pub mod port;
pub mod receipt;
pub mod text;
pub mod tlv;
pub mod wire;

pub use device::*;
pub use driver::{BeforeClose, DriverBox, FiscalDriver, ModelProfile};
pub use error::{Condition, DriverError, ErrorClass, ErrorInfo};
pub use money::{Money, Quantity};
pub use receipt::*;
