//! # kkm-shtrih: the Shtrih-M protocol family (Azur-01F)
//!
//! Kept in layers, the way tokio-modbus keeps its codec apart from its transports:
//!
//! * [`codec`]: frames and field encodings, pure functions over bytes, no I/O.
//! * [`link`]: the ENQ/ACK/NAK session over any byte stream (serial, USB COM, TCP).
//! * [`errors`]: every device error code, explained.
//! * [`commands`]: the command numbers and the answer layouts we read.
//! * [`driver`]: [`driver::ShtrihDriver`], the `FiscalDriver` for this family.
//! * [`profile`]: model profiles (Azur-01F).
//! * [`probe`]: a harmless "who are you" for protocol detection.
//! * [`emulator`]: the Shtrih front-end of the shared emulated fiscal core.
//! * [`decode`], [`decode_fields`]: a sniffed port capture explained (`kkm-agent decode`).
//!
//! `protocol-specs/shtrih-m.md` describes the protocol in our own words.

pub mod codec;
pub mod commands;
pub mod decode;
pub mod decode_fields;
pub mod driver;
pub mod emulator;
pub mod errors;
pub mod link;
pub mod probe;
pub mod profile;
pub mod registration;

pub use driver::ShtrihDriver;
pub use profile::AZUR_01F;
