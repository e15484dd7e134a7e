//! kkm-agent: the daemon between shop software and its fiscal register.
//!
//! * [`cli`]: the command line (`serve`, `demo`, `device`, `emulate`, `token`, `decode`).
//! * [`config`]: the TOML config and per-OS default paths.
//! * [`queue`]: the durable SQLite job queue and the per-device workers that print
//!   exactly once.
//! * [`api`]: the localhost HTTP API, its security and the OpenAPI document.
//! * [`devices`]: builds a driver for a configured device (model → protocol crate).
//! * [`emulate`]: runs a protocol emulator on a PTY or TCP port.
//! * [`diagnostics`]: what a field engineer asks: protocol detection, identity checks.
//! * [`reconcile`]: explains the difference between the X-report and the program.

pub mod agent_client;
pub mod api;
pub mod cli;
pub mod cli_decode;
pub mod cli_demo;
pub mod cli_device;
pub mod cli_diag;
pub mod cli_reconcile;
pub mod cli_via_daemon;
pub mod config;
pub mod daemon;
pub mod datadir_lock;
pub mod devices;
pub mod diagnostics;
pub mod emulate;
pub mod http_server;
pub mod private_files;
pub mod queue;
pub mod reconcile;
#[cfg(windows)]
pub mod windows_service;
