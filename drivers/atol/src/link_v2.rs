//! The v2 session (older units, serial only): each side takes the line with ENQ.
//!
//! Host: `ENQ` → `ACK`; frame → `ACK` (`NAK`: resend, bounded); `EOT`. Device: `ENQ` →
//! host `ACK`; answer frame → host `ACK` (bad check: `NAK`, the device resends); `EOT`.
//!
//! v2 has no task buffer, so an answer lost after the device ACKed the frame cannot be
//! fetched again. The session never resends an accepted frame: it reports a link error
//! and the queue asks the ФН what happened.

use crate::v2::{self, ACK, ENQ, EOT, NAK};
use kkm_core::error::{DriverError, DriverResult, LinkFailure};
use kkm_core::port::{write_within, BoxStream, WRITE_DEADLINE};
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::time::{timeout, Instant};

const TRIES: usize = 5;
const CONTROL: Duration = Duration::from_millis(800);
/// The longest one answer frame may take to arrive once it started (4 KiB at 9600 baud
/// is about 4.3 s).
const FRAME: Duration = Duration::from_secs(6);

pub struct V2Link {
    stream: BoxStream,
}

fn io(e: std::io::Error) -> DriverError {
    DriverError::from_io(&e, "atol v2 link")
}

impl V2Link {
    pub fn new(stream: BoxStream) -> V2Link {
        V2Link { stream }
    }

    async fn write(&mut self, b: &[u8]) -> DriverResult<()> {
        write_within(&mut self.stream, b, WRITE_DEADLINE, "atol v2 link").await
    }

    /// One byte, `None` when `wait` runs out (a zero wait never reads: a flooding peer
    /// cannot keep a loop alive past its deadline).
    async fn byte(&mut self, wait: Duration) -> DriverResult<Option<u8>> {
        if wait.is_zero() {
            return Ok(None);
        }
        let mut b = [0u8; 1];
        match timeout(wait, self.stream.read(&mut b)).await {
            Err(_) => Ok(None),
            Ok(Ok(0)) => Err(DriverError::link(LinkFailure::Disconnected, "the device closed the connection")),
            Ok(Ok(_)) => Ok(Some(b[0])),
            Ok(Err(e)) => Err(io(e)),
        }
    }

    /// A control byte (ACK, NAK, ENQ, EOT) within `wait`; other bytes are noise and are
    /// skipped, so noise never makes a retry come sooner.
    async fn control(&mut self, wait: Duration) -> DriverResult<Option<u8>> {
        let deadline = Instant::now() + wait;
        loop {
            match self.byte(deadline.saturating_duration_since(Instant::now())).await? {
                Some(b @ (ACK | NAK | ENQ | EOT)) => return Ok(Some(b)),
                Some(_) => continue,
                None => return Ok(None),
            }
        }
    }

    pub async fn task(&mut self, task: &[u8], answer_timeout: Duration) -> DriverResult<Vec<u8>> {
        // Take the line.
        let mut granted = false;
        for _ in 0..TRIES {
            self.write(&[ENQ]).await?;
            if self.control(CONTROL).await? == Some(ACK) {
                granted = true;
                break;
            }
        }
        if !granted {
            return Err(DriverError::link(LinkFailure::NoAnswer, "no ACK to ENQ"));
        }
        let frame = v2::encode(task);
        let mut accepted = false;
        for _ in 0..TRIES {
            self.write(&frame).await?;
            match self.control(CONTROL).await? {
                Some(ACK) => {
                    accepted = true;
                    break;
                }
                Some(NAK) => continue,
                _ => return Err(DriverError::link(LinkFailure::NoAnswer, "no ACK for the frame: it may have run")),
            }
        }
        if !accepted {
            return Err(DriverError::link(LinkFailure::Garbled, "the device refused the frame"));
        }
        self.write(&[EOT]).await?;
        // The device takes the line to answer.
        let deadline = Instant::now() + answer_timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.byte(left).await? {
                Some(ENQ) => break,
                Some(_) => continue,
                None => return Err(DriverError::link(LinkFailure::NoAnswer, "no answer in time: the command may have run")),
            }
        }
        self.write(&[ACK]).await?;
        for _ in 0..TRIES {
            let mut buf = Vec::new();
            let frame_deadline = Instant::now() + FRAME;
            loop {
                let wait = CONTROL.min(frame_deadline.saturating_duration_since(Instant::now()));
                let Some(b) = self.byte(wait).await? else {
                    return Err(DriverError::link(
                        if buf.is_empty() { LinkFailure::NoAnswer } else { LinkFailure::Garbled },
                        "the answer stopped halfway or never became a frame",
                    ));
                };
                buf.push(b);
                match v2::decode(&buf) {
                    Ok((data, _)) => {
                        self.write(&[ACK]).await?;
                        let _ = self.byte(CONTROL).await; // EOT
                        return Ok(data);
                    }
                    Err(v2::V2Error::Incomplete) if buf.len() < 4096 => continue,
                    Err(v2::V2Error::NotAFrame) if buf.len() == 1 => buf.clear(),
                    Err(_) => {
                        self.write(&[NAK]).await?;
                        break;
                    }
                }
            }
        }
        Err(DriverError::link(LinkFailure::Garbled, "the answer kept arriving corrupted"))
    }
}
