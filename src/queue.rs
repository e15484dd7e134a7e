//! The durable job queue and the per-device workers.
//!
//! * [`job`]: what a job is (a receipt, cash in/out, shift open/close, X-report) and how
//!   it looks to API callers.
//! * [`store`]: SQLite (WAL, `synchronous = FULL`): a job's row is committed before
//!   anyone is told it was accepted; the idempotency key is unique per device.
//! * [`worker`]: one task per device that prints jobs in order, parks the queue when a
//!   person must act, and after any crash or lost link asks the ФН what really happened
//!   before deciding (the exactly-once rule).

pub mod committer;
pub mod job;
pub mod recovery;
pub mod store;
pub mod worker;

pub use job::{Job, JobError, JobRequest, JobStatus};
pub use store::{Store, StoreError};
