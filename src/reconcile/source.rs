//! The device side of a reconciliation: the shift's counters and its documents in the
//! ФН, read through the device's worker (never a second connection), and the agent's
//! journal for the shift.
//!
//! Documents are read backwards from the ФН's last one to the shift-open document, by
//! number, a few per worker step so printing is never held up for long. Each one read is
//! cached in SQLite under the ФН's serial: a second reconciliation of the same shift reads
//! only the documents made since.

use super::explain::ShiftInput;
use super::matching::{entry_of, AgentEntry};
use super::DocumentStats;
use crate::queue::worker::{read_document, DeviceRequest, ReadDocument, ShiftRead, WorkerHandle, MAX_DOCUMENTS_PER_REQUEST};
use crate::queue::{JobStatus, Store, StoreError};
use async_trait::async_trait;
use kkm_core::{DocumentKind, DriverBox, DriverError, FiscalDocument, Money, OperationCount, OperationTotals, PaymentType, ShiftTotals};
use std::collections::{HashMap, HashSet};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime, PrimitiveDateTime};

/// A shift longer than this many documents is not read (a ФН holds far fewer per shift).
const MAX_SHIFT_DOCUMENTS: usize = 250_000;

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{0}")]
    Driver(#[from] DriverError),
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// Reads from one register: through its worker in the daemon, or directly on the CLI.
#[async_trait]
pub trait DeviceReader: Send {
    async fn shift(&mut self, x_report: bool) -> Result<ShiftRead, DriverError>;
    /// At most [`MAX_DOCUMENTS_PER_REQUEST`] numbers.
    async fn documents(&mut self, numbers: Vec<u32>) -> Result<Vec<ReadDocument>, DriverError>;
}

#[async_trait]
impl DeviceReader for WorkerHandle {
    async fn shift(&mut self, x_report: bool) -> Result<ShiftRead, DriverError> {
        self.request(|reply| DeviceRequest::Shift { x_report, reply }).await
    }
    async fn documents(&mut self, numbers: Vec<u32>) -> Result<Vec<ReadDocument>, DriverError> {
        self.request(|reply| DeviceRequest::Documents { numbers, reply }).await
    }
}

#[async_trait]
impl DeviceReader for DriverBox {
    async fn shift(&mut self, x_report: bool) -> Result<ShiftRead, DriverError> {
        let status = self.status().await?;
        let totals = self.shift_totals().await?;
        let fs = self.fn_status().await?;
        let printed = if x_report { Some(self.x_report().await.map_err(|e| (&e).into())) } else { None };
        Ok(ShiftRead { totals, status, fn_serial: fs.serial, last_document: fs.last_document_number, x_report: printed })
    }
    async fn documents(&mut self, numbers: Vec<u32>) -> Result<Vec<ReadDocument>, DriverError> {
        let mut docs = Vec::with_capacity(numbers.len());
        for n in numbers {
            docs.push(read_document(self, n).await?);
        }
        Ok(docs)
    }
}

/// The shift's documents, in order, and how many came from the device and the cache.
#[derive(Debug, Clone, Default)]
pub struct ShiftDocuments {
    pub documents: Vec<FiscalDocument>,
    /// Receipts' payment splits read from the ФН, by document number.
    pub payments: HashMap<u32, [i64; 5]>,
    pub stats: DocumentStats,
}

impl ShiftDocuments {
    /// The shift-open document's time, if the shift's start was found.
    pub fn opened_at(&self) -> Option<PrimitiveDateTime> {
        self.documents.first().filter(|d| d.kind == DocumentKind::ShiftOpen).map(|d| d.datetime)
    }
}

/// Reads the shift's documents, from the last one back to the shift-open document,
/// taking what `cache` has and caching what it reads.
pub async fn shift_documents(
    reader: &mut dyn DeviceReader,
    cache: Option<&Store>,
    fn_serial: &str,
    last: u32,
) -> Result<ShiftDocuments, SourceError> {
    let mut got: Vec<FiscalDocument> = Vec::new();
    let mut payments: HashMap<u32, [i64; 5]> = HashMap::new();
    let mut known: HashMap<u32, ReadDocument> = HashMap::new();
    let mut fetched: HashSet<u32> = HashSet::new();
    let mut window_low = u32::MAX;
    let mut stats = DocumentStats::default();
    let mut batch = 4usize;
    let mut n = last;
    while n >= 1 && got.len() < MAX_SHIFT_DOCUMENTS {
        if n < window_low {
            let low = n.saturating_sub(1023).max(1);
            if let Some(store) = cache {
                let serial = fn_serial.to_string();
                let docs = store.blocking(move |s| s.cached_documents(&serial, low, n)).await?;
                known.extend(docs.into_iter().map(|d| (d.0.number, d)));
            }
            window_low = low;
        }
        let Some((doc, split)) = known.remove(&n) else {
            let mut numbers = Vec::new();
            let mut m = n;
            while m >= 1 && numbers.len() < batch.min(MAX_DOCUMENTS_PER_REQUEST) && !known.contains_key(&m) {
                numbers.push(m);
                m -= 1;
            }
            let docs = reader.documents(numbers).await?;
            if docs.is_empty() {
                break;
            }
            if let Some(store) = cache {
                let (serial, keep) = (fn_serial.to_string(), docs.clone());
                store.blocking(move |s| s.cache_documents(&serial, &keep)).await?;
            }
            stats.read_from_device += docs.len();
            for d in docs {
                fetched.insert(d.0.number);
                known.insert(d.0.number, d);
            }
            if !known.contains_key(&n) {
                return Err(DriverError::Protocol(format!("the ФН answered another document for №{n}")).into());
            }
            batch = (batch * 2).min(MAX_DOCUMENTS_PER_REQUEST);
            continue;
        };
        if !fetched.contains(&n) {
            stats.from_cache += 1;
        }
        // The previous shift's close: this shift's start was not found after it.
        if doc.kind == DocumentKind::ShiftClose && n != last {
            break;
        }
        let start = matches!(doc.kind, DocumentKind::ShiftOpen | DocumentKind::Registration);
        if let Some(p) = split {
            payments.insert(doc.number, p);
        }
        got.push(doc);
        if start {
            break;
        }
        n -= 1;
    }
    got.reverse();
    stats.in_shift = got.len();
    stats.receipts = got.iter().filter(|d| d.kind == DocumentKind::Receipt).count();
    Ok(ShiftDocuments { documents: got, payments, stats })
}

/// Some protocols (УМКА) give no sums by operation and payment type: they are rebuilt
/// from the shift's receipts as the ФН holds them (their payment split read back), and
/// the receipts by operation counted from the documents. Counters a protocol does give
/// are never replaced.
pub fn fill_missing_sums(t: &mut ShiftTotals, docs: &ShiftDocuments) {
    let receipts = docs.documents.iter().filter(|d| d.kind == DocumentKind::Receipt);
    if t.receipts_by_operation.is_empty() {
        let mut counts: Vec<OperationCount> = Vec::new();
        for d in receipts.clone() {
            let Some(op) = d.operation else { continue };
            match counts.iter_mut().find(|c| c.operation == op) {
                Some(c) => c.count += 1,
                None => counts.push(OperationCount { operation: op, count: 1 }),
            }
        }
        t.receipts_by_operation = counts;
    }
    if !t.by_operation.is_empty() {
        return;
    }
    let mut sums: Vec<OperationTotals> = Vec::new();
    for d in receipts {
        let (Some(op), Some(pays)) = (d.operation, docs.payments.get(&d.number)) else { continue };
        for (pay, v) in PaymentType::ALL.into_iter().zip(pays) {
            if *v == 0 {
                continue;
            }
            match sums.iter_mut().find(|s| s.operation == op && s.payment == pay) {
                Some(s) => s.sum = Money(s.sum.0 + v),
                None => sums.push(OperationTotals { operation: op, payment: pay, sum: Money(*v) }),
            }
        }
    }
    t.by_operation = sums;
}

fn utc_primitive(t: OffsetDateTime) -> PrimitiveDateTime {
    PrimitiveDateTime::new(t.date(), t.time())
}

/// The device-clock time `at` on the PC's UTC clock, given the device clock now. `None`
/// for a clock so wrong the arithmetic leaves the calendar (then every job counts).
fn to_utc(at: PrimitiveDateTime, device_now: PrimitiveDateTime) -> Option<OffsetDateTime> {
    let now = OffsetDateTime::now_utc();
    let offset = device_now - utc_primitive(now);
    at.checked_sub(offset).map(PrimitiveDateTime::assume_utc)
}

fn parse_utc(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

/// The agent's jobs that matter to the shift: receipts it printed (found by ФД number
/// later), cash moves done since the shift opened, and jobs that did not print.
pub fn agent_entries(jobs: &[crate::queue::Job], shift_docs: &HashSet<u32>, opened_utc: Option<OffsetDateTime>) -> Vec<AgentEntry> {
    // Document times are to the minute; a minute of slack either way.
    let since = opened_utc.and_then(|t| t.checked_sub(Duration::minutes(1)));
    let after = |s: &str| match (since, parse_utc(s)) {
        (Some(since), Some(t)) => t >= since,
        _ => true,
    };
    jobs.iter()
        .filter_map(|j| entry_of(j).map(|e| (j, e)))
        .filter(|(j, e)| match j.status {
            JobStatus::Done => match e.document {
                Some(d) => shift_docs.contains(&d),
                None => after(&j.updated_at),
            },
            JobStatus::Queued | JobStatus::InFlight => true,
            _ => after(&j.created_at),
        })
        .map(|(_, e)| e)
        .collect()
}

/// Everything a reconciliation needs from the device and the journal.
pub struct Gathered {
    pub input: ShiftInput,
    pub read: ShiftRead,
}

/// Reads the shift through the device's worker and the journal from the store.
pub async fn gather(handle: &WorkerHandle, store: &Store, device: &str) -> Result<Gathered, SourceError> {
    let mut reader = handle.clone();
    let mut read = reader.shift(false).await?;
    let docs = shift_documents(&mut reader, Some(store), &read.fn_serial, read.last_document).await?;
    read.totals.opened_at = docs.opened_at();
    fill_missing_sums(&mut read.totals, &docs);
    let opened_utc = docs.opened_at().and_then(|at| to_utc(at, read.status.clock));
    let since = opened_utc
        .and_then(|t| t.checked_sub(Duration::hours(1)))
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".into());
    let dev = device.to_string();
    let jobs = store.blocking(move |s| s.jobs_since(&dev, &since)).await?;
    let numbers: HashSet<u32> = docs.documents.iter().map(|d| d.number).collect();
    let agent = agent_entries(&jobs, &numbers, opened_utc);
    let input = ShiftInput {
        device: device.to_string(),
        fn_serial: read.fn_serial.clone(),
        totals: read.totals.clone(),
        documents: docs.documents,
        payments: docs.payments,
        agent,
        stats: docs.stats,
    };
    Ok(Gathered { input, read })
}
