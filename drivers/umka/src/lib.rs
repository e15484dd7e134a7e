//! # kkm-umka: the УМКА / МЕЩЕРА HTTP API (the working assumption for Neva-01-F)
//!
//! Armax's fiscal platform (УМКА-01-ФА, МЕЩЕРА-01-Ф, and most likely Нева-01-Ф) answers
//! HTTP requests with JSON documents: `GET /cashboxstatus.json`, `GET /cycleopen.json`,
//! `GET /cycleclose.json`, `POST /fiscalcheck.json`, `GET /fiscaldoc.json?number=N`,
//! with HTTP Basic auth (cashier number and password). See `protocol-specs/umka.md` for
//! the sources and for what is not confirmed.
//!
//! The crate is split the way tokio-modbus splits a protocol from its transport:
//!
//! * [`codec`]: the request and response types (serde) and the pure functions that build
//!   a `fiscalcheck` request from a [`kkm_core::Receipt`] and read answers. No I/O.
//! * [`errors`]: the API's `result` codes, explained in Russian with the action to take.
//! * [`client`]: the HTTP transport: Basic auth, a deadline per operation and a bound on
//!   every body.
//! * [`driver`]: [`driver::UmkaDriver`], the `FiscalDriver` on top of both.
//! * [`emulator`]: the same resources served by the shared emulated fiscal core.
//! * [`profile`]: the Neva-01-F profile on this protocol.
//! * [`probe`]: harmless identification for `detect`.

pub mod client;
pub mod codec;
pub mod driver;
pub mod emulator;
pub mod errors;
pub mod probe;
pub mod profile;

pub use driver::UmkaDriver;
pub use profile::NEVA_01_F_UMKA;
