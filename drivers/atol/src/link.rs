//! The v3 task session: every command is a task in the device's buffer.
//!
//! `ADD (NeedResult) TID task` puts a task in; the device replies with the task's state,
//! `A3 result` (a synchronous reply: no task id) when it finished at once, or later (a
//! poll with `REQ TID`, answered the same way, or an asynchronous `A6 TID result` on
//! packet id 0xF0). `ACK TID`
//! releases the finished task. Every write has a deadline and every poll is paced, so a
//! peer that floods the line or stops reading ends in a `link.*` error in time.
//!
//! The buffer is what makes retries safe: after a timeout or a corrupted reply the host
//! never re-sends the ADD, it asks `REQ TID`. `B3` (no such task) proves the ADD never
//! arrived, and only then is it sent again. A finished task's result stays in the buffer
//! until it is acknowledged, so a lost answer is fetched, never re-executed.

use crate::v3::{self, Packet};
use kkm_core::error::{DriverError, DriverResult, LinkFailure};
use kkm_core::port::{write_within, BoxStream, WRITE_DEADLINE};
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::time::{timeout, Instant};

/// How often to poll a task whose reply did not come. Polls are paced: noise or a flood
/// of packets never makes the host send faster than this.
const POLL: Duration = Duration::from_millis(600);
/// How many times an ADD is sent again after the device proved it never got it (`B3`,
/// `B1`, or an empty packet asking for a repeat).
const MAX_RESENDS: usize = 3;
/// More buffered bytes than this without a packet: the peer is not speaking ATOL.
const MAX_BUFFERED: usize = 64 * 1024;

pub struct V3Link {
    stream: BoxStream,
    buf: Vec<u8>,
    next_id: u8,
    next_tid: u8,
    /// Corrupted packets dropped since the last task started (noise on the line).
    dropped: usize,
}

impl V3Link {
    pub fn new(stream: BoxStream) -> V3Link {
        V3Link { stream, buf: Vec::new(), next_id: 0, next_tid: 1, dropped: 0 }
    }

    fn packet_id(&mut self) -> u8 {
        let id = self.next_id;
        self.next_id = if id >= v3::MAX_ID { 0 } else { id + 1 };
        id
    }

    /// Sends one packet under a write deadline; returns its packet id.
    async fn send(&mut self, data: &[u8]) -> DriverResult<u8> {
        let id = self.packet_id();
        self.send_as(id, data).await?;
        Ok(id)
    }

    async fn send_as(&mut self, id: u8, data: &[u8]) -> DriverResult<()> {
        let frame = v3::encode(id, data).map_err(|e| DriverError::Protocol(e.to_string()))?;
        write_within(&mut self.stream, &frame, WRITE_DEADLINE, "atol link").await
    }

    /// The next good packet, or `Ok(None)` when `wait` runs out. Corrupted packets are
    /// dropped and counted; they never cut the wait short, so noise cannot make the
    /// caller poll faster.
    async fn receive(&mut self, wait: Duration) -> DriverResult<Option<Packet>> {
        let deadline = Instant::now() + wait;
        loop {
            // Resynchronise on the start byte.
            if let Some(p) = self.buf.iter().position(|b| *b == v3::START) {
                self.buf.drain(..p);
            } else {
                self.buf.clear();
            }
            match v3::decode(&self.buf) {
                Ok(Some((packet, used))) => {
                    self.buf.drain(..used);
                    return Ok(Some(packet));
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::debug!("atol: dropped a bad packet: {e}");
                    self.dropped += 1;
                    self.buf.drain(..1.min(self.buf.len()));
                    if Instant::now() >= deadline {
                        return Ok(None);
                    }
                    continue;
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            let mut chunk = [0u8; 512];
            match timeout(left, self.stream.read(&mut chunk)).await {
                Err(_) => return Ok(None),
                Ok(Ok(0)) => return Err(DriverError::link(LinkFailure::Disconnected, "the device closed the connection")),
                Ok(Ok(n)) => {
                    if self.buf.len() > MAX_BUFFERED {
                        return Err(DriverError::link(LinkFailure::Garbled, "endless bytes without a packet"));
                    }
                    self.buf.extend_from_slice(&chunk[..n]);
                }
                Ok(Err(e)) => return Err(DriverError::from_io(&e, "atol link")),
            }
        }
    }

    /// Clears the device's task buffer (on connect).
    pub async fn abort(&mut self, wait: Duration) -> DriverResult<bool> {
        let id = self.send(&[v3::ABORT]).await?;
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.receive(left).await? {
                None => return Ok(false),
                Some(p) if p.id == id => return Ok(true),
                Some(_) => {} // something older: keep waiting for the ABORT's reply
            }
        }
    }

    /// Runs one task (password + command + params) and returns its answer bytes.
    ///
    /// Replies are matched by packet id. A synchronous reply (to the ADD or to a REQ)
    /// is the task's state and then the answer, with no task id (`A3 answer…`, as
    /// atol4j, KaznachejFA and multimag read it); an asynchronous result (`A6`/`A7` on
    /// packet id 0xF0) names the task (`A6 TID answer…`).
    pub async fn task(&mut self, task: &[u8], answer_timeout: Duration) -> DriverResult<Vec<u8>> {
        let tid = self.next_tid;
        self.next_tid = self.next_tid.wrapping_add(1).max(1);
        self.dropped = 0;
        let mut add = vec![v3::ADD, v3::NEED_RESULT, tid];
        add.extend_from_slice(task);
        let deadline = Instant::now() + answer_timeout;
        let mut add_id = self.send(&add).await?;
        let mut req_ids: Vec<u8> = Vec::new();
        let mut last_send = Instant::now();
        let mut resends = 0usize;
        let mut heard_anything = false;
        let result = loop {
            let now = Instant::now();
            let left = deadline.saturating_duration_since(now);
            if left.is_zero() {
                let (failure, detail) = if self.dropped > 0 && !heard_anything {
                    (LinkFailure::Garbled, "only corrupted packets arrived: the task may have run")
                } else if heard_anything {
                    (LinkFailure::Garbled, "no result for the task in time: it may have run")
                } else {
                    (LinkFailure::NoAnswer, "no result for the task in time: it may have run")
                };
                return Err(DriverError::link(failure, detail));
            }
            let next_poll = (last_send + POLL).saturating_duration_since(now);
            let Some(p) = self.receive(left.min(next_poll.max(Duration::from_millis(1)))).await? else {
                if Instant::now() >= last_send + POLL {
                    // Lost or corrupted: ask about the task, never re-add it blindly.
                    req_ids.push(self.send(&[v3::REQ, tid]).await?);
                    if req_ids.len() > 8 {
                        req_ids.remove(0);
                    }
                    last_send = Instant::now();
                }
                continue;
            };
            heard_anything = true;
            let to_add = p.id == add_id;
            let to_req = req_ids.contains(&p.id);
            match (p.data.as_slice(), to_add, to_req) {
                // Asynchronous result of this task.
                ([v3::ASYNC_RESULT | v3::ASYNC_ERROR, t, result @ ..], _, _) if *t == tid && p.id == v3::ASYNC_ID => {
                    break result.to_vec()
                }
                // An empty packet: the device asks for the packet again.
                ([], true, _) if resends < MAX_RESENDS => {
                    resends += 1;
                    self.send_as(add_id, &add).await?;
                    last_send = Instant::now();
                }
                // Synchronous reply to the ADD: the state, then the answer, no task id.
                ([v3::RESULT | v3::ERROR, result @ ..], true, _) => break result.to_vec(),
                // Reply to a REQ: also the state, then the answer (the REQ named the task).
                ([v3::RESULT | v3::ERROR, result @ ..], false, true) => break result.to_vec(),
                // The ADD never arrived (B3 to a REQ) or did not fit (B1): only now is it
                // safe to send it again, paced and bounded.
                ([v3::NOT_FOUND, ..], false, true) | ([v3::OVERFLOW, ..], true, _) => {
                    if resends >= MAX_RESENDS {
                        return Err(DriverError::link(LinkFailure::Garbled, "the device keeps losing the task"));
                    }
                    resends += 1;
                    if Instant::now() < last_send + POLL {
                        tokio::time::sleep_until(last_send + POLL).await;
                    }
                    add_id = self.send(&add).await?;
                    req_ids.clear();
                    last_send = Instant::now();
                }
                ([v3::TID_EXISTS, ..], true, _) => {} // an earlier ADD got there: the paced REQ asks
                ([v3::ILLEGAL, ..], true, _) => {
                    return Err(DriverError::Protocol("the device refused the task as illegal (B4)".into()))
                }
                _ => {} // pending, or a reply to something older
            }
        };
        // The result is in hand: a failed ACK does not undo it (the next command finds
        // the link's trouble; the buffer keeps the task until it is acknowledged).
        if self.send(&[v3::ACK, tid]).await.is_ok() {
            let _ = self.receive(Duration::from_millis(300)).await; // the ACK's reply
        }
        Ok(result)
    }
}
