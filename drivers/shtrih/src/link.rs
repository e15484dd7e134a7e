//! The Shtrih-M session over a byte stream.
//!
//! Before each command the host sends ENQ to learn the device's state:
//! NAK means idle (send the command), ACK means an answer to an earlier command is
//! still waiting (read it and throw it away: **never resend**, or a receipt could be
//! executed twice), silence means no link.
//!
//! After the frame, the device ACKs it (or NAKs: resend), executes and answers. The
//! host ACKs a good answer. A bad LRC is NAKed, then ENQ fetches the same answer again.
//! While waiting for a long answer the host polls with ENQ, so an answer the device
//! has but never delivered (a pulled cable) is fetched, not re-executed.
//!
//! Over TCP a device may put a stray 0xFF where a control byte is expected; it is
//! skipped. Every wait has a deadline; an answer that does not come is reported as a
//! link error, which the caller must treat as "outcome unknown".

use crate::codec::{self, Answer, ACK, ENQ, NAK, STX};
use kkm_core::error::{DriverError, DriverResult, LinkFailure};
use kkm_core::port::BoxStream;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::time::{timeout, Instant};

/// Waits used by the session.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// For a control byte (the answer to ENQ or to a frame).
    pub control: Duration,
    /// Between bytes inside a frame.
    pub byte: Duration,
    /// How often to poll with ENQ while an answer is slow.
    pub poll: Duration,
}

impl Default for Timing {
    fn default() -> Timing {
        Timing { control: Duration::from_millis(1000), byte: Duration::from_millis(500), poll: Duration::from_millis(700) }
    }
}

const ENQ_TRIES: usize = 3;
const SEND_TRIES: usize = 10;
const REREAD_TRIES: usize = 10;

pub struct Link {
    stream: BoxStream,
    timing: Timing,
    /// A byte read ahead while waiting for a control byte (STX racing an ACK).
    pushback: Option<u8>,
    /// An ENQ was sent whose reply may still be on its way (an answer frame arrived
    /// that could have been the unit's own, not the reply). Stale replies are drained
    /// before the next exchange, so a stale NAK is never taken for "frame refused".
    unsure: bool,
}

enum FrameRead {
    Good(Vec<u8>),
    BadLrc,
    Timeout,
}

fn lost(detail: impl Into<String>) -> DriverError {
    DriverError::link(LinkFailure::NoAnswer, detail)
}

fn io_err(e: std::io::Error) -> DriverError {
    DriverError::from_io(&e, "shtrih link")
}

impl Link {
    pub fn new(stream: BoxStream, timing: Timing) -> Link {
        Link { stream, timing, pushback: None, unsure: false }
    }

    pub fn into_stream(self) -> BoxStream {
        self.stream
    }

    async fn write(&mut self, bytes: &[u8]) -> DriverResult<()> {
        kkm_core::port::write_within(&mut self.stream, bytes, kkm_core::port::WRITE_DEADLINE, "shtrih link").await
    }

    /// One byte, or `None` on timeout. EOF is a lost link.
    async fn byte(&mut self, wait: Duration) -> DriverResult<Option<u8>> {
        if let Some(b) = self.pushback.take() {
            return Ok(Some(b));
        }
        if wait.is_zero() {
            return Ok(None); // a spent deadline never reads: a flooding peer cannot loop us
        }
        let mut b = [0u8; 1];
        match timeout(wait, self.stream.read(&mut b)).await {
            Err(_) => Ok(None),
            Ok(Ok(0)) => Err(DriverError::link(LinkFailure::Disconnected, "the device closed the connection")),
            Ok(Ok(_)) => Ok(Some(b[0])),
            Ok(Err(e)) => Err(io_err(e)),
        }
    }

    /// A control byte, skipping the stray 0xFF some devices send over TCP.
    async fn control(&mut self, wait: Duration) -> DriverResult<Option<u8>> {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.byte(left).await? {
                Some(0xFF) => continue,
                other => return Ok(other),
            }
        }
    }

    /// Reads a frame whose STX may already have been consumed.
    async fn frame(&mut self, first_wait: Duration, stx_seen: bool) -> DriverResult<FrameRead> {
        if !stx_seen {
            let deadline = Instant::now() + first_wait;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                match self.byte(left).await? {
                    None => return Ok(FrameRead::Timeout),
                    Some(STX) => break,
                    Some(_) => continue, // noise, 0xFF, late ACKs
                }
            }
        }
        let Some(n) = self.byte(self.timing.byte).await? else { return Ok(FrameRead::BadLrc) };
        let mut buf = vec![STX, n];
        for _ in 0..=usize::from(n) {
            match self.byte(self.timing.byte).await? {
                Some(b) => buf.push(b),
                None => return Ok(FrameRead::BadLrc), // a torn frame is as bad as a bad LRC
            }
        }
        match codec::unframe(&buf) {
            Ok(p) => Ok(FrameRead::Good(p.to_vec())),
            Err(_) => Ok(FrameRead::BadLrc),
        }
    }

    /// Reads and drops whatever arrives until the line is quiet for `quiet`, bounded
    /// (a peer that floods the line cannot keep us here).
    async fn drain(&mut self, quiet: Duration) -> DriverResult<()> {
        self.pushback = None;
        let deadline = Instant::now() + self.timing.control * 2;
        let mut buf = [0u8; 256];
        while Instant::now() < deadline {
            match timeout(quiet, self.stream.read(&mut buf)).await {
                Err(_) => return Ok(()),
                Ok(Ok(0)) => return Err(DriverError::link(LinkFailure::Disconnected, "the device closed the connection")),
                Ok(Ok(_)) => continue,
                Ok(Err(e)) => return Err(io_err(e)),
            }
        }
        Err(DriverError::link(LinkFailure::Garbled, "the line never goes quiet"))
    }

    fn quiet(&self) -> Duration {
        (self.timing.byte / 2).max(Duration::from_millis(20))
    }

    /// Makes sure no answer is pending: ENQ until NAK. A pending answer is read and
    /// acknowledged but not used: it belongs to a command whose caller already gave up.
    async fn settle(&mut self) -> DriverResult<()> {
        for _ in 0..ENQ_TRIES {
            if std::mem::take(&mut self.unsure) {
                self.drain(self.quiet()).await?;
            }
            self.write(&[ENQ]).await?;
            self.unsure = true; // until its reply is read
            let reply = self.control(self.timing.control).await?;
            self.unsure = !matches!(reply, Some(NAK | ACK));
            match reply {
                Some(NAK) => return Ok(()),
                Some(ACK) => {
                    if let FrameRead::Good(p) = self.frame(self.timing.control * 2, false).await? {
                        tracing::warn!("shtrih: dropped a stale answer {:02X?}", p.get(..2));
                        self.write(&[ACK]).await?;
                    }
                }
                Some(STX) => {
                    if let FrameRead::Good(_) = self.frame(self.timing.byte, true).await? {
                        self.write(&[ACK]).await?;
                    }
                }
                Some(_) | None => {}
            }
        }
        Err(lost("no NAK to ENQ: the device does not answer"))
    }

    /// Sends one command frame and returns its answer.
    pub async fn transact(&mut self, request: &[u8], answer_timeout: Duration) -> DriverResult<Answer> {
        self.settle().await?;
        self.send(request).await?;
        let payload = self.receive(answer_timeout).await?;
        Answer::parse(&payload).map_err(|e| DriverError::Protocol(e.to_string()))
    }

    /// Writes the frame until the device takes it. Anything but an ACK (or the answer
    /// itself) after the frame is not proof that the device did not take it: silence,
    /// noise (a corrupted ACK) and even a NAK (a late reply to an earlier ENQ) may
    /// come while the device runs the command, and the protocol has no sequence number,
    /// so a second copy would run it twice (an item line, a cash-in). So the host
    /// drains the line, asks with ENQ, and writes the frame again only on NAK: idle with
    /// nothing pending, the frame did not run. ACK or an answer means it is running or
    /// done.
    async fn send(&mut self, request: &[u8]) -> DriverResult<()> {
        for _ in 0..SEND_TRIES {
            self.write(request).await?;
            match self.control(self.timing.control).await? {
                Some(ACK) => return Ok(()),
                Some(STX) => {
                    // The answer came without an ACK first: keep the STX for `receive`.
                    self.pushback = Some(STX);
                    return Ok(());
                }
                unclear => {
                    // A NAK (which could be a stale reply to an earlier ENQ), silence,
                    // or noise: ask the device before anything is written again.
                    if let Some(b) = unclear.filter(|b| *b != NAK) {
                        tracing::warn!("shtrih: {b:#04X} where ACK was expected; asking with ENQ");
                    }
                    self.drain(self.quiet()).await?;
                    self.write(&[ENQ]).await?;
                    match self.control(self.timing.control).await? {
                        Some(NAK) => continue, // idle with no answer: the frame did not run
                        Some(ACK) => return Ok(()),
                        Some(STX) => {
                            self.unsure = true;
                            self.pushback = Some(STX);
                            return Ok(());
                        }
                        _ => return Err(lost("no ACK for the command frame: the command may have run")),
                    }
                }
            }
        }
        Err(DriverError::link(LinkFailure::Garbled, "the device refused the frame 10 times"))
    }

    async fn receive(&mut self, answer_timeout: Duration) -> DriverResult<Vec<u8>> {
        let deadline = Instant::now() + answer_timeout;
        let mut rereads = 0;
        let mut stx_seen = self.pushback.take() == Some(STX);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(lost("no answer in time: the command may have run"));
            }
            match self.frame(left.min(self.timing.poll), stx_seen).await? {
                FrameRead::Good(p) => {
                    self.write(&[ACK]).await?;
                    return Ok(p);
                }
                FrameRead::BadLrc => {
                    rereads += 1;
                    if rereads > REREAD_TRIES {
                        return Err(DriverError::link(LinkFailure::Garbled, "answers keep arriving corrupted"));
                    }
                    self.write(&[NAK]).await?;
                }
                FrameRead::Timeout => {}
            }
            stx_seen = false;
            // Ask for the answer again (after a NAK) or poll for a slow one.
            self.write(&[ENQ]).await?;
            self.unsure = true;
            match self.control(self.timing.control).await? {
                Some(ACK) => {}
                Some(STX) => stx_seen = true,
                Some(NAK) => {
                    return Err(DriverError::link(LinkFailure::Garbled, "the device has no answer for the command"))
                }
                _ => {} // busy devices may stay silent; keep waiting until the deadline
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    /// A device whose ACK to the command frame is corrupted on the line: the host must
    /// ask with ENQ and read the answer, never write the frame a second time.
    #[tokio::test]
    async fn corrupted_ack_is_answered_with_enq_not_a_resend() {
        let (host, mut dev) = tokio::io::duplex(4096);
        let request = codec::frame(&[0x50, 0x1E, 0, 0, 0, 0x10, 0x27, 0, 0, 0]).unwrap();
        let answer = codec::frame(&[0x50, 0x00, 0x1E, 0x01, 0x00]).unwrap();
        let (req, ans) = (request.clone(), answer.clone());
        let device = tokio::spawn(async move {
            let mut frames = 0;
            let mut pending: Option<Vec<u8>> = None;
            let mut b = [0u8; 1];
            while let Ok(1) = dev.read(&mut b).await {
                match b[0] {
                    ENQ => {
                        let reply = match &pending { Some(f) => [&[ACK][..], f].concat(), None => vec![NAK] };
                        let _ = dev.write_all(&reply).await;
                    }
                    ACK => pending = None,
                    STX => {
                        let mut rest = vec![0u8; req.len() - 1];
                        dev.read_exact(&mut rest).await.unwrap();
                        frames += 1;
                        let _ = dev.write_all(&[0x86]).await; // the garbled ACK
                        let _ = dev.write_all(&ans).await;
                        pending = Some(ans.clone());
                    }
                    _ => {}
                }
            }
            frames
        });
        let stream: BoxStream = Box::new(host);
        let mut link = Link::new(stream, Timing { control: Duration::from_millis(300), byte: Duration::from_millis(200), poll: Duration::from_millis(200) });
        let a = link.transact(&request, Duration::from_secs(2)).await.unwrap();
        assert_eq!(a.error, 0);
        drop(link);
        assert_eq!(device.await.unwrap(), 1, "the command frame was written more than once");
    }
}
