//! SQLite storage for jobs.
//!
//! WAL with `synchronous = FULL`: a commit is on disk when it returns, so the API may
//! answer 202 right after it. Migrations are kept here, in order, and applied at open.
//! All access goes through one connection behind a mutex; callers on the async runtime
//! use [`Store::blocking`] so an fsync never stalls other tasks.

use super::job::{Job, JobError, JobRequest, JobStatus};
use kkm_core::{FiscalDocument, FiscalResult, Money};
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;
use std::sync::{Arc, Mutex};

const MIGRATIONS: &[&str] = &[
    "CREATE TABLE jobs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        device TEXT NOT NULL,
        idem_key TEXT NOT NULL,
        kind TEXT NOT NULL,
        body TEXT NOT NULL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        fn_before INTEGER,
        result TEXT,
        error TEXT,
        copy_pending INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        UNIQUE (device, idem_key)
    );
    CREATE INDEX jobs_device_status ON jobs (device, status, id);
    CREATE INDEX jobs_created ON jobs (created_at);",
    // Exactly-once evidence, kept apart from the request body so that recovery never
    // depends on the body still parsing after an upgrade:
    // - fn_serial: the ФН that fn_before was read from (another ФН proves nothing);
    // - close_sent: committed right before the command that makes a receipt fiscal;
    // - sent_at: when fn_before was recorded;
    // - operation, total, payments: what the receipt must look like in the ФН.
    "ALTER TABLE jobs ADD COLUMN fn_serial TEXT;
    ALTER TABLE jobs ADD COLUMN close_sent INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE jobs ADD COLUMN sent_at TEXT;
    ALTER TABLE jobs ADD COLUMN operation TEXT;
    ALTER TABLE jobs ADD COLUMN total INTEGER;
    ALTER TABLE jobs ADD COLUMN payments TEXT;
    UPDATE jobs SET close_sent = 1 WHERE status = 'in_flight';",
    // The shift's cash-in (or cash-out) total before a cash move was sent: after a lost
    // answer, a move by exactly the job's sum is the job; none means it did not run.
    "ALTER TABLE jobs ADD COLUMN cash_before INTEGER;",
    // Fiscal documents read back from the ФН for reconciliation, by ФН serial and number.
    // A document never changes once the ФН has it, so a second reconciliation of the
    // same shift reads only the documents made since.
    "CREATE TABLE fn_documents (
        fn_serial TEXT NOT NULL,
        number INTEGER NOT NULL,
        body TEXT NOT NULL,
        read_at TEXT NOT NULL,
        PRIMARY KEY (fn_serial, number)
    ) WITHOUT ROWID;",
    // A person checked a `needs_attention` job (the page's «Проверено»): recorded, the
    // job itself stays as it was.
    "ALTER TABLE jobs ADD COLUMN acknowledged_at TEXT;",
];

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The key exists with another body.
    #[error("idempotency key reused with a different body")]
    Conflict(Box<Job>),
    #[error("not found")]
    NotFound,
    #[error("job is not queued")]
    NotCancellable(Box<Job>),
    /// A Z-report is already waiting or printing for the device: a second one would
    /// close the next shift too.
    #[error("a shift close is already queued")]
    CloseAlreadyQueued(Box<Job>),
    /// Only a `needs_attention` job can be marked as checked.
    #[error("job does not need attention")]
    NotAcknowledgeable(Box<Job>),
    #[error("database: {0}")]
    Db(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Db(e.to_string())
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
    /// The id of every job whose status changed: long-polls wait on this instead of
    /// reading the database over and over.
    changes: tokio::sync::broadcast::Sender<i64>,
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

const COLUMNS: &str = "id, device, idem_key, kind, body, status, attempts, fn_before, result, error, copy_pending, created_at, updated_at,
    fn_serial, close_sent, operation, total, cash_before, acknowledged_at";

fn row_to_job(r: &rusqlite::Row) -> rusqlite::Result<Job> {
    let body: String = r.get(4)?;
    let status: String = r.get(5)?;
    let result: Option<String> = r.get(8)?;
    let error: Option<String> = r.get(9)?;
    Ok(Job {
        id: r.get(0)?,
        device: r.get(1)?,
        idempotency_key: r.get(2)?,
        kind: r.get(3)?,
        request: serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
        status: JobStatus::parse(&status).unwrap_or(JobStatus::Failed),
        attempts: r.get(6)?,
        fn_before: r.get(7)?,
        result: result.and_then(|s| serde_json::from_str::<FiscalResult>(&s).ok()),
        error: error.and_then(|s| serde_json::from_str::<JobError>(&s).ok().map(JobError::stored)),
        copy_pending: r.get::<_, i64>(10)? != 0,
        created_at: r.get(11)?,
        updated_at: r.get(12)?,
        fn_serial: r.get(13)?,
        close_sent: r.get::<_, i64>(14)? != 0,
        operation: r.get::<_, Option<String>>(15)?.and_then(|o| serde_json::from_value(serde_json::Value::String(o)).ok()),
        total: r.get::<_, Option<i64>>(16)?.map(Money),
        cash_before: r.get::<_, Option<i64>>(17)?.map(Money),
        acknowledged_at: r.get(18)?,
    })
}

fn submit_in(tx: &rusqlite::Transaction, device: &str, key: &str, request: &JobRequest) -> StoreResult<(Job, bool)> {
    let body = serde_json::to_string(request).map_err(|e| StoreError::Db(e.to_string()))?;
    let existing = tx
        .query_row(
            &format!("SELECT {COLUMNS} FROM jobs WHERE device = ?1 AND idem_key = ?2"),
            params![device, key],
            row_to_job,
        )
        .optional()?;
    if let Some(job) = existing {
        let same = serde_json::from_value::<JobRequest>(job.request.clone()).ok().as_ref() == Some(request);
        return if same { Ok((job, false)) } else { Err(StoreError::Conflict(Box::new(job))) };
    }
    // One Z-report per intent: while one waits or prints, another key cannot queue a
    // second (it would close the shift the first one's successors open).
    if matches!(request, JobRequest::CloseShift) {
        let queued = tx
            .query_row(
                &format!("SELECT {COLUMNS} FROM jobs WHERE device = ?1 AND kind = 'close_shift' AND status IN ('queued', 'in_flight') LIMIT 1"),
                params![device],
                row_to_job,
            )
            .optional()?;
        if let Some(job) = queued {
            return Err(StoreError::CloseAlreadyQueued(Box::new(job)));
        }
    }
    let t = now();
    let (operation, total, payments) = match request {
        JobRequest::Receipt { receipt } => {
            let total = receipt.items.iter().try_fold(Money::ZERO, |acc, i| i.total().and_then(|t| acc.checked_add(t)));
            let payments: Vec<(serde_json::Value, i64)> =
                receipt.payments.iter().map(|p| (serde_json::to_value(p.kind).unwrap_or_default(), p.sum.0)).collect();
            let op = serde_json::to_value(receipt.operation).ok().and_then(|v| v.as_str().map(str::to_string));
            (op, total.map(|t| t.0), serde_json::to_string(&payments).ok())
        }
        JobRequest::CashIn { sum } | JobRequest::CashOut { sum } => (None, Some(sum.0), None),
        _ => (None, None, None),
    };
    tx.execute(
        "INSERT INTO jobs (device, idem_key, kind, body, status, created_at, updated_at, operation, total, payments)
         VALUES (?1, ?2, ?3, ?4, 'queued', ?5, ?5, ?6, ?7, ?8)",
        params![device, key, request.kind(), body, t, operation, total, payments],
    )?;
    let id = tx.last_insert_rowid();
    Ok((tx.query_row(&format!("SELECT {COLUMNS} FROM jobs WHERE id = ?1"), params![id], row_to_job)?, true))
}

/// A cached document: the document and, for receipts, the payment split read with it.
#[derive(serde::Serialize, serde::Deserialize)]
struct CachedDocument {
    doc: FiscalDocument,
    #[serde(default)]
    payments: Option<[i64; 5]>,
}

/// What to list.
#[derive(Debug, Default, Clone)]
pub struct JobFilter {
    pub device: Option<String>,
    pub status: Option<JobStatus>,
    /// RFC 3339 bounds on `created_at`, compared as instants (not as text: the stored
    /// times have varying fractional digits).
    pub since: Option<String>,
    pub until: Option<String>,
    pub limit: u32,
}

impl Store {
    pub fn open(path: &Path) -> StoreResult<Store> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        for (i, m) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = conn.unchecked_transaction()?;
            tx.execute_batch(m)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)?;
            tx.commit()?;
        }
        Ok(Store { conn: Arc::new(Mutex::new(conn)), changes: tokio::sync::broadcast::channel(1024).0 })
    }

    /// Ids of jobs whose status changes from now on. A lagging receiver must re-read.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<i64> {
        self.changes.subscribe()
    }

    fn changed(&self, id: i64) {
        let _ = self.changes.send(id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on a blocking thread: for use from async code.
    pub async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let s = self.clone();
        tokio::task::spawn_blocking(move || f(&s)).await.map_err(|e| StoreError::Db(e.to_string()))?
    }

    /// Accepts a job, or returns the job already stored under this key.
    /// `Ok((job, true))` when new; a different body under the same key is a conflict.
    pub fn submit(&self, device: &str, key: &str, request: &JobRequest) -> StoreResult<(Job, bool)> {
        let conn = self.lock();
        let tx = conn.unchecked_transaction()?;
        let r = submit_in(&tx, device, key, request);
        tx.commit()?;
        r
    }

    /// Accepts many jobs in one transaction: one fsync for all of them. Each result is
    /// what [`Store::submit`] would have returned; nothing is acknowledged before commit.
    pub fn submit_many(&self, items: &[(String, String, JobRequest)]) -> StoreResult<Vec<StoreResult<(Job, bool)>>> {
        let conn = self.lock();
        let tx = conn.unchecked_transaction()?;
        let results = items.iter().map(|(d, k, r)| submit_in(&tx, d, k, r)).collect();
        tx.commit()?;
        Ok(results)
    }

    pub fn get(&self, id: i64) -> StoreResult<Job> {
        job_by_id(&self.lock(), id)
    }

    pub fn list(&self, f: &JobFilter) -> StoreResult<Vec<Job>> {
        let conn = self.lock();
        let mut stmt = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM jobs WHERE (?1 IS NULL OR device = ?1) AND (?2 IS NULL OR status = ?2)
             AND (?3 IS NULL OR julianday(created_at) >= julianday(?3)) AND (?4 IS NULL OR julianday(created_at) <= julianday(?4))
             ORDER BY id DESC LIMIT ?5"
        ))?;
        let limit = if f.limit == 0 { 100 } else { f.limit.min(1000) };
        let rows = stmt.query_map(
            params![f.device, f.status.map(JobStatus::as_str), f.since, f.until, limit],
            row_to_job,
        )?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// The job a device's worker should look at next: one left in flight (recover it
    /// first), else the oldest queued.
    pub fn next_for(&self, device: &str) -> StoreResult<Option<Job>> {
        Ok(self
            .lock()
            .query_row(
                &format!(
                    "SELECT {COLUMNS} FROM jobs WHERE device = ?1 AND status IN ('in_flight', 'queued')
                     ORDER BY status = 'in_flight' DESC, id LIMIT 1"
                ),
                params![device],
                row_to_job,
            )
            .optional()?)
    }

    /// How many of a device's jobs are in each status (statuses with none are left out).
    pub fn status_counts(&self, device: &str) -> StoreResult<Vec<(String, u64)>> {
        let conn = self.lock();
        let mut stmt = conn.prepare("SELECT status, COUNT(*) FROM jobs WHERE device = ?1 GROUP BY status")?;
        let rows = stmt.query_map(params![device], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?.max(0) as u64)))?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// The oldest queued shift job (a way out of a parked queue).
    pub fn next_shift_job(&self, device: &str) -> StoreResult<Option<Job>> {
        Ok(self
            .lock()
            .query_row(
                &format!(
                    "SELECT {COLUMNS} FROM jobs WHERE device = ?1 AND status = 'queued'
                     AND kind IN ('open_shift', 'close_shift', 'x_report') ORDER BY id LIMIT 1"
                ),
                params![device],
                row_to_job,
            )
            .optional()?)
    }

    /// Claims a queued job for the worker before any device I/O: after this, a DELETE
    /// can no longer cancel it. `false` when the job is no longer queued (cancelled).
    pub fn claim(&self, id: i64) -> StoreResult<bool> {
        let n = self.lock().execute(
            "UPDATE jobs SET status = 'in_flight', fn_before = NULL, fn_serial = NULL, close_sent = 0, sent_at = NULL, cash_before = NULL,
             updated_at = ?2 WHERE id = ?1 AND status = 'queued'",
            params![id, now()],
        )?;
        self.changed(id);
        Ok(n == 1)
    }

    /// Records the ФН counter (and which ФН it came from) for a claimed job: committed
    /// before the first byte of the job is sent.
    pub fn record_before(&self, id: i64, fn_before: Option<u32>, fn_serial: Option<&str>) -> StoreResult<()> {
        self.guarded(
            "UPDATE jobs SET fn_before = ?2, fn_serial = ?3, sent_at = ?4, updated_at = ?4 WHERE id = ?1 AND status = 'in_flight'",
            params![id, fn_before, fn_serial, now()],
        )
    }

    /// Records the shift's cash-in or cash-out total before a cash move is sent.
    pub fn record_cash_before(&self, id: i64, cash_before: Money) -> StoreResult<()> {
        self.guarded(
            "UPDATE jobs SET cash_before = ?2, sent_at = ?3, updated_at = ?3 WHERE id = ?1 AND status = 'in_flight'",
            params![id, cash_before.0, now()],
        )
    }

    /// The receipt's closing command is about to be sent: before this marker is on
    /// disk, the ФН cannot hold this job's receipt.
    pub fn mark_close_sent(&self, id: i64) -> StoreResult<()> {
        self.guarded("UPDATE jobs SET close_sent = 1, updated_at = ?2 WHERE id = ?1 AND status = 'in_flight'", params![id, now()])
    }

    /// Runs an update that must change exactly the one in-flight row.
    fn guarded(&self, sql: &str, p: impl rusqlite::Params) -> StoreResult<()> {
        match self.lock().execute(sql, p)? {
            1 => Ok(()),
            _ => Err(StoreError::Db("the job is no longer in flight".into())),
        }
    }

    /// Puts an in-flight job back in the queue: the ФН proves nothing was fiscalised,
    /// or nothing was sent. Not an attempt: lost links and crashes do not count.
    pub fn requeue(&self, id: i64) -> StoreResult<()> {
        self.lock().execute(
            "UPDATE jobs SET status = 'queued', fn_before = NULL, fn_serial = NULL, close_sent = 0, cash_before = NULL, updated_at = ?2
             WHERE id = ?1 AND status = 'in_flight'",
            params![id, now()],
        )?;
        self.changed(id);
        Ok(())
    }

    /// Puts an in-flight job back after the device definitely refused it: counts
    /// toward the per-job limit.
    pub fn requeue_refused(&self, id: i64) -> StoreResult<()> {
        self.lock().execute(
            "UPDATE jobs SET status = 'queued', fn_before = NULL, fn_serial = NULL, close_sent = 0, cash_before = NULL, attempts = attempts + 1,
             updated_at = ?2 WHERE id = ?1 AND status = 'in_flight'",
            params![id, now()],
        )?;
        self.changed(id);
        Ok(())
    }

    /// Ends a job that the worker holds (queued or in flight). A job cancelled
    /// meanwhile stays cancelled.
    pub fn finish(
        &self,
        id: i64,
        status: JobStatus,
        result: Option<&FiscalResult>,
        error: Option<&JobError>,
        copy_pending: bool,
    ) -> StoreResult<()> {
        let result = result.and_then(|r| serde_json::to_string(r).ok());
        let error = error.and_then(|e| serde_json::to_string(e).ok());
        self.lock().execute(
            "UPDATE jobs SET status = ?2, result = ?3, error = ?4, copy_pending = ?5, updated_at = ?6
             WHERE id = ?1 AND status IN ('queued', 'in_flight')",
            params![id, status.as_str(), result, error, copy_pending as i64, now()],
        )?;
        self.changed(id);
        Ok(())
    }

    /// Jobs whose paper copy must still be printed.
    pub fn copies_pending(&self, device: &str) -> StoreResult<Vec<Job>> {
        let conn = self.lock();
        let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM jobs WHERE device = ?1 AND copy_pending = 1 ORDER BY id"))?;
        let rows = stmt.query_map(params![device], row_to_job)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    pub fn clear_copy(&self, id: i64) -> StoreResult<()> {
        self.lock().execute("UPDATE jobs SET copy_pending = 0, updated_at = ?2 WHERE id = ?1", params![id, now()])?;
        self.changed(id);
        Ok(())
    }

    /// Documents of one ФН already read back, numbers `from..=to`, by number.
    pub fn cached_documents(&self, fn_serial: &str, from: u32, to: u32) -> StoreResult<Vec<(FiscalDocument, Option<[i64; 5]>)>> {
        let conn = self.lock();
        let mut stmt =
            conn.prepare("SELECT body FROM fn_documents WHERE fn_serial = ?1 AND number BETWEEN ?2 AND ?3 ORDER BY number")?;
        let rows = stmt.query_map(params![fn_serial, from, to], |r| r.get::<_, String>(0))?;
        let mut docs = Vec::new();
        for body in rows {
            // A row this version cannot read is read again from the device.
            if let Ok(c) = serde_json::from_str::<CachedDocument>(&body?) {
                docs.push((c.doc, c.payments));
            }
        }
        Ok(docs)
    }

    /// Remembers documents read back from the ФН `fn_serial`.
    pub fn cache_documents(&self, fn_serial: &str, docs: &[(FiscalDocument, Option<[i64; 5]>)]) -> StoreResult<()> {
        let conn = self.lock();
        let tx = conn.unchecked_transaction()?;
        let t = now();
        for (d, payments) in docs {
            let body = serde_json::to_string(&CachedDocument { doc: d.clone(), payments: *payments })
                .map_err(|e| StoreError::Db(e.to_string()))?;
            tx.execute(
                "INSERT OR REPLACE INTO fn_documents (fn_serial, number, body, read_at) VALUES (?1, ?2, ?3, ?4)",
                params![fn_serial, d.number, body, t],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// A device's jobs for reconciliation: those created at or after `since` (RFC 3339),
    /// and every job still waiting or in flight whenever it was created.
    pub fn jobs_since(&self, device: &str, since: &str) -> StoreResult<Vec<Job>> {
        let conn = self.lock();
        let mut stmt = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM jobs WHERE device = ?1 AND (created_at >= ?2 OR status IN ('queued', 'in_flight')
             OR updated_at >= ?2) ORDER BY id"
        ))?;
        let rows = stmt.query_map(params![device, since], row_to_job)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Marks a `needs_attention` job as checked by a person (once; again is a no-op).
    pub fn acknowledge(&self, id: i64) -> StoreResult<Job> {
        let conn = self.lock();
        let n = conn.execute(
            "UPDATE jobs SET acknowledged_at = ?2 WHERE id = ?1 AND status = 'needs_attention' AND acknowledged_at IS NULL",
            params![id, now()],
        )?;
        let job = job_by_id(&conn, id)?;
        if job.status != JobStatus::NeedsAttention {
            return Err(StoreError::NotAcknowledgeable(Box::new(job)));
        }
        drop(conn);
        if n == 1 {
            self.changed(id);
        }
        Ok(job)
    }

    /// Cancels a job that has not started.
    pub fn cancel(&self, id: i64) -> StoreResult<Job> {
        let conn = self.lock();
        let n = conn.execute(
            "UPDATE jobs SET status = 'cancelled', updated_at = ?2 WHERE id = ?1 AND status = 'queued'",
            params![id, now()],
        )?;
        let job = job_by_id(&conn, id)?;
        if n == 0 {
            return Err(StoreError::NotCancellable(Box::new(job)));
        }
        drop(conn);
        self.changed(id);
        Ok(job)
    }
}

/// One job read back by id, or `NotFound`.
fn job_by_id(conn: &Connection, id: i64) -> StoreResult<Job> {
    conn.query_row(&format!("SELECT {COLUMNS} FROM jobs WHERE id = ?1"), params![id], row_to_job)
        .optional()?
        .ok_or(StoreError::NotFound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_conflict_and_fifo() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("q.sqlite")).unwrap();
        let (a, new) = s.submit("k1", "key-1", &JobRequest::XReport).unwrap();
        assert!(new);
        let (again, new) = s.submit("k1", "key-1", &JobRequest::XReport).unwrap();
        assert!(!new);
        assert_eq!(again.id, a.id);
        assert!(matches!(s.submit("k1", "key-1", &JobRequest::OpenShift), Err(StoreError::Conflict(_))));
        // The same key on another device is another job.
        assert!(s.submit("k2", "key-1", &JobRequest::OpenShift).unwrap().1);
        let (b, _) = s.submit("k1", "key-2", &JobRequest::OpenShift).unwrap();
        assert_eq!(s.next_for("k1").unwrap().unwrap().id, a.id);
        assert!(s.claim(b.id).unwrap());
        s.record_before(b.id, Some(7), Some("9960440300012345")).unwrap();
        assert_eq!(s.next_for("k1").unwrap().unwrap().id, b.id, "in-flight jobs are recovered first");
        assert!(matches!(s.cancel(b.id), Err(StoreError::NotCancellable(_))));
        assert_eq!(s.cancel(a.id).unwrap().status, JobStatus::Cancelled);
    }

    #[test]
    fn a_cancelled_job_cannot_be_claimed_or_finished() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("q.sqlite")).unwrap();
        let (a, _) = s.submit("k1", "key-1", &JobRequest::XReport).unwrap();
        s.cancel(a.id).unwrap();
        assert!(!s.claim(a.id).unwrap(), "a cancelled job was claimed");
        assert!(s.record_before(a.id, Some(1), None).is_err());
        s.finish(a.id, JobStatus::Done, None, None, false).unwrap();
        assert_eq!(s.get(a.id).unwrap().status, JobStatus::Cancelled);
        // A claimed job cannot be cancelled.
        let (b, _) = s.submit("k1", "key-2", &JobRequest::XReport).unwrap();
        assert!(s.claim(b.id).unwrap());
        assert!(matches!(s.cancel(b.id), Err(StoreError::NotCancellable(_))));
    }

    #[test]
    fn receipt_evidence_is_kept_apart_from_the_body() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("q.sqlite")).unwrap();
        let receipt: kkm_core::Receipt = serde_json::from_value(serde_json::json!({
            "operation": "sale",
            "items": [{"name": "Стрижка", "price": 150000, "vat": "none"}],
            "payments": [{"type": "cash", "sum": 150000}]
        }))
        .unwrap();
        let (j, _) = s.submit("k1", "r-1", &JobRequest::Receipt { receipt }).unwrap();
        assert_eq!(j.operation, Some(kkm_core::Operation::Sale));
        assert_eq!(j.total, Some(Money(150_000)));
    }

    #[test]
    fn a_second_z_report_waits_for_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("q.sqlite")).unwrap();
        let (z, _) = s.submit("k1", "z-1", &JobRequest::CloseShift).unwrap();
        assert!(matches!(s.submit("k1", "z-2", &JobRequest::CloseShift), Err(StoreError::CloseAlreadyQueued(j)) if j.id == z.id));
        assert_eq!(s.submit("k1", "z-1", &JobRequest::CloseShift).unwrap().0.id, z.id, "the same key is the same job");
        assert!(s.submit("k2", "z-2", &JobRequest::CloseShift).unwrap().1, "another device is another shift");
        assert!(s.claim(z.id).unwrap());
        assert!(matches!(s.submit("k1", "z-2", &JobRequest::CloseShift), Err(StoreError::CloseAlreadyQueued(_))));
        s.finish(z.id, JobStatus::Done, None, None, false).unwrap();
        assert!(s.submit("k1", "z-2", &JobRequest::CloseShift).unwrap().1, "after the first one, the next shift may close");
    }

    #[test]
    fn only_needs_attention_can_be_acknowledged() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("q.sqlite")).unwrap();
        let (a, _) = s.submit("k1", "key-1", &JobRequest::XReport).unwrap();
        assert!(matches!(s.acknowledge(a.id), Err(StoreError::NotAcknowledgeable(_))));
        assert!(matches!(s.acknowledge(a.id + 100), Err(StoreError::NotFound)));
        assert!(s.claim(a.id).unwrap());
        s.finish(a.id, JobStatus::NeedsAttention, None, None, false).unwrap();
        let first = s.acknowledge(a.id).unwrap();
        let at = first.acknowledged_at.clone().expect("recorded");
        assert_eq!(first.status, JobStatus::NeedsAttention, "the job itself stays as it was");
        assert_eq!(s.acknowledge(a.id).unwrap().acknowledged_at, Some(at), "a second mark keeps the first time");
    }

    #[test]
    fn reopen_keeps_jobs() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("q.sqlite");
        let id = Store::open(&p).unwrap().submit("k1", "x", &JobRequest::XReport).unwrap().0.id;
        assert_eq!(Store::open(&p).unwrap().get(id).unwrap().status, JobStatus::Queued);
    }
}
