//! The v3 task session: every command is a task in the device's buffer.
//!
//! `ADD (NeedResult) TID task` puts a task in; the device replies with the task's state,
//! `A3 TID result` when it finished at once, or later (a poll with `REQ TID`, or an
//! asynchronous `A6` on packet id 0xF0). `ACK TID` releases the finished task.
//!
//! The buffer is what makes retries safe: after a timeout or a corrupted reply the host
//! never re-sends the ADD, it asks `REQ TID`. `B3` (no such task) proves the ADD never
//! arrived, and only then is it sent again. A finished task's result stays in the buffer
//! until it is acknowledged, so a lost answer is fetched, never re-executed.

use crate::v3::{self, Packet};
use kkm_core::error::{DriverError, DriverResult, LinkFailure};
use kkm_core::port::BoxStream;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{timeout, Instant};

/// How often to poll a task whose reply did not come.
const POLL: Duration = Duration::from_millis(600);

pub struct V3Link {
    stream: BoxStream,
    buf: Vec<u8>,
    next_id: u8,
    next_tid: u8,
}

fn io(e: std::io::Error) -> DriverError {
    DriverError::from_io(&e, "atol link")
}

impl V3Link {
    pub fn new(stream: BoxStream) -> V3Link {
        V3Link { stream, buf: Vec::new(), next_id: 0, next_tid: 1 }
    }

    fn packet_id(&mut self) -> u8 {
        let id = self.next_id;
        self.next_id = if id >= v3::MAX_ID { 0 } else { id + 1 };
        id
    }

    async fn send(&mut self, data: &[u8]) -> DriverResult<()> {
        let id = self.packet_id();
        let frame = v3::encode(id, data).map_err(|e| DriverError::Protocol(e.to_string()))?;
        self.stream.write_all(&frame).await.map_err(io)?;
        self.stream.flush().await.map_err(io)
    }

    /// The next packet, `Ok(None)` on timeout or a corrupted packet (dropped).
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
                    self.buf.drain(..1.min(self.buf.len()));
                    return Ok(None);
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
                    if self.buf.len() > 64 * 1024 {
                        return Err(DriverError::link(LinkFailure::Garbled, "endless bytes without a packet"));
                    }
                    self.buf.extend_from_slice(&chunk[..n]);
                }
                Ok(Err(e)) => return Err(io(e)),
            }
        }
    }

    /// Clears the device's task buffer (on connect).
    pub async fn abort(&mut self, wait: Duration) -> DriverResult<bool> {
        self.send(&[v3::ABORT]).await?;
        Ok(self.receive(wait).await?.is_some())
    }

    /// Runs one task (password + command + params) and returns its answer bytes.
    pub async fn task(&mut self, task: &[u8], answer_timeout: Duration) -> DriverResult<Vec<u8>> {
        let tid = self.next_tid;
        self.next_tid = self.next_tid.wrapping_add(1).max(1);
        let mut add = vec![v3::ADD, v3::NEED_RESULT, tid];
        add.extend_from_slice(task);
        self.send(&add).await?;
        let deadline = Instant::now() + answer_timeout;
        let mut heard_anything = false;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(DriverError::link(
                    if heard_anything { LinkFailure::Garbled } else { LinkFailure::NoAnswer },
                    "no result for the task in time: it may have run",
                ));
            }
            let packet = self.receive(left.min(POLL)).await?;
            let Some(p) = packet else {
                // Lost or corrupted: ask about the task, never re-add it blindly.
                self.send(&[v3::REQ, tid]).await?;
                continue;
            };
            heard_anything = true;
            match p.data.as_slice() {
                [v3::RESULT | v3::ASYNC_RESULT | v3::ERROR | v3::ASYNC_ERROR, t, result @ ..] if *t == tid => {
                    let result = result.to_vec();
                    self.send(&[v3::ACK, tid]).await?;
                    let _ = self.receive(Duration::from_millis(300)).await; // the ACK's reply
                    return Ok(result);
                }
                [v3::PENDING | v3::IN_PROGRESS, t, ..] if *t == tid => {}
                [v3::NOT_FOUND, ..] => {
                    // The ADD never arrived: now it is safe to send it again.
                    self.send(&add).await?;
                }
                [v3::TID_EXISTS, ..] => self.send(&[v3::REQ, tid]).await?,
                _ => {} // a reply to something older
            }
        }
    }
}
