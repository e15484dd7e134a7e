//! Group commit for enqueues.
//!
//! Every accepted job must be on disk before its caller hears 202, and with
//! `synchronous = FULL` each commit costs an fsync. Under concurrent load, callers that
//! arrive while one commit is running wait for the next one, and that next commit takes
//! all of them: one transaction, one fsync, then every caller gets its own answer.

use super::job::{Job, JobRequest};
use super::store::{Store, StoreError, StoreResult};
use tokio::sync::{mpsc, oneshot};

type Reply = oneshot::Sender<StoreResult<(Job, bool)>>;

/// At most this many jobs share one commit.
const MAX_BATCH: usize = 256;

#[derive(Clone)]
pub struct Committer {
    tx: mpsc::Sender<((String, String, JobRequest), Reply)>,
}

impl Committer {
    /// Starts the committing thread for `store`.
    pub fn start(store: Store) -> std::io::Result<Committer> {
        let (tx, mut rx) = mpsc::channel::<((String, String, JobRequest), Reply)>(4096);
        std::thread::Builder::new()
            .name("kkm-commit".into())
            .spawn(move || {
                while let Some(first) = rx.blocking_recv() {
                    let mut batch = vec![first];
                    while batch.len() < MAX_BATCH {
                        match rx.try_recv() {
                            Ok(next) => batch.push(next),
                            Err(_) => break,
                        }
                    }
                    let (items, replies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
                    match store.submit_many(&items) {
                        Ok(results) => {
                            for (r, reply) in results.into_iter().zip(replies) {
                                let _ = reply.send(r);
                            }
                        }
                        Err(e) => {
                            let msg = e.to_string();
                            for reply in replies {
                                let _ = reply.send(Err(StoreError::Db(msg.clone())));
                            }
                        }
                    }
                }
            })?;
        Ok(Committer { tx })
    }

    /// Submits a job; returns once it is committed (or refused).
    pub async fn submit(&self, device: String, key: String, request: JobRequest) -> StoreResult<(Job, bool)> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(((device, key, request), reply))
            .await
            .map_err(|_| StoreError::Db("the commit thread stopped".into()))?;
        answer.await.map_err(|_| StoreError::Db("the commit thread stopped".into()))?
    }
}
