//! A harmless "who are you" for protocol detection: ENQ, then "get device type" (0xFC).
//!
//! Neither can print or fiscalise. If the device holds an unread answer (it answers ENQ
//! with ACK), the answer is read and acknowledged, never replayed.

use crate::codec::{self, from_cp1251, Reader, ACK, ENQ, NAK};
use crate::commands::DEVICE_TYPE;
use crate::link::{Link, Timing};
use kkm_core::port::BoxStream;
use std::time::Duration;
use tokio::io::AsyncReadExt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeAnswer {
    pub model_id: u16,
    pub model_name: String,
}

/// Asks the device on `stream` for its type. `None` when nothing Shtrih-like answers.
pub async fn probe(stream: BoxStream, wait: Duration) -> Option<ProbeAnswer> {
    let mut stream = stream;
    // A first ENQ tells a Shtrih device (ACK or NAK) from anything else, cheaply.
    kkm_core::port::write_within(&mut stream, &[ENQ], kkm_core::port::WRITE_DEADLINE, "shtrih probe").await.ok()?;
    let mut b = [0u8; 1];
    // One deadline for the whole wait: a peer streaming 0xFF must not keep it alive.
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return None;
        }
        match tokio::time::timeout(left, stream.read(&mut b)).await {
            Ok(Ok(1)) if b[0] == 0xFF => continue,
            Ok(Ok(1)) if b[0] == NAK || b[0] == ACK => break,
            _ => return None,
        }
    }
    let timing = Timing { control: wait, byte: wait, poll: wait };
    let mut link = Link::new(stream, timing);
    let frame = codec::request(DEVICE_TYPE, &[]).ok()?;
    let answer = tokio::time::timeout(wait * 6, link.transact(&frame, wait * 3)).await.ok()?.ok()?;
    if answer.cmd != DEVICE_TYPE || answer.error != 0 {
        return None;
    }
    let mut r = Reader::new(&answer.data, "device type");
    let head = r.bytes(6).ok()?;
    Some(ProbeAnswer { model_id: u16::from(head[4]), model_name: from_cp1251(r.rest()) })
}
