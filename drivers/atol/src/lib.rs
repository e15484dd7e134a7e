//! # kkm-atol: the ATOL 3.x protocol (assumed for Neva-01-F)
//!
//! No public document states Neva-01-F's PC protocol. We profile it as an
//! ATOL-3.x-compatible fiscal core and let `kkm-agent device … detect` find out what a
//! real unit speaks; see `protocol-specs/atol.md`.
//!
//! * [`v3`]: the 0xFE framing with escaping, 7-bit lengths and CRC-8, plus the task
//!   buffer commands (ADD/ACK/REQ/ABORT). Pure codec.
//! * [`v2`]: the older STX/ETX/DLE framing with an XOR check. Pure codec.
//! * [`bcd`]: packed-BCD money, quantities and dates; text in ATOL's code page.
//! * [`answers`]: the answer layouts of the commands, as pure parsers.
//! * [`link`]: the v3 task session over any byte stream; [`link_v2`]: the v2 session.
//! * [`commands`], [`errors`], [`profile`]: command codes, explained errors, Neva-01-F.
//! * [`driver`]: [`driver::AtolDriver`], the `FiscalDriver` for this family.
//! * [`probe`]: harmless identification over v3 and v2, for detection.
//! * [`emulator`]: the ATOL front-end of the shared emulated fiscal core.
//! * [`decode`], [`decode_fields`]: a sniffed port capture explained (`kkm-agent decode`).

pub mod answers;
pub mod bcd;
pub mod commands;
pub mod decode;
pub mod decode_fields;
pub mod driver;
pub mod emulator;
pub mod errors;
pub mod link;
pub mod link_v2;
pub mod probe;
pub mod profile;
pub mod v2;
pub mod v3;

pub use driver::AtolDriver;
pub use profile::NEVA_01_F;
