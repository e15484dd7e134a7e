//! Harmless identification for protocol detection.
//!
//! * v3: `ABORT` (clears an empty buffer), then a "device type" (`A5`) task.
//! * v2: `ENQ` → `ACK`, then the same `A5` request framed STX/ETX, then `EOT`.
//!
//! Neither can print or fiscalise. Both give up at the deadline on silence or garbage.

use crate::commands::DEVICE_TYPE;
use crate::link::V3Link;
use crate::v2;
use kkm_core::port::{write_within, BoxStream, WRITE_DEADLINE};
use std::time::Duration;
use tokio::io::AsyncReadExt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeAnswer {
    pub model_id: u16,
    pub model_name: String,
    /// `v3` or `v2`.
    pub link: &'static str,
}

fn parse_device_type(answer: &[u8], link: &'static str) -> Option<ProbeAnswer> {
    let fields = crate::driver::answer_fields(DEVICE_TYPE, answer).ok()?;
    let t = crate::answers::device_type(&fields).ok()?;
    Some(ProbeAnswer { model_id: u16::from(t.model), model_name: t.name, link })
}

pub async fn probe_v3(stream: BoxStream, wait: Duration) -> Option<ProbeAnswer> {
    let mut link = V3Link::new(stream);
    if !link.abort(wait).await.ok()? {
        return None;
    }
    let answer = tokio::time::timeout(wait * 4, link.task(&[0, 0, DEVICE_TYPE], wait * 3)).await.ok()?.ok()?;
    parse_device_type(&answer, "v3")
}

async fn byte(stream: &mut BoxStream, wait: Duration) -> Option<u8> {
    let mut b = [0u8; 1];
    match tokio::time::timeout(wait, stream.read(&mut b)).await {
        Ok(Ok(1)) => Some(b[0]),
        _ => None,
    }
}

pub async fn probe_v2(mut stream: BoxStream, wait: Duration) -> Option<ProbeAnswer> {
    write_within(&mut stream, &[v2::ENQ], WRITE_DEADLINE, "atol probe").await.ok()?;
    if byte(&mut stream, wait).await? != v2::ACK {
        return None;
    }
    write_within(&mut stream, &v2::encode(&[0, 0, DEVICE_TYPE]), WRITE_DEADLINE, "atol probe").await.ok()?;
    if byte(&mut stream, wait).await? != v2::ACK {
        return None;
    }
    write_within(&mut stream, &[v2::EOT], WRITE_DEADLINE, "atol probe").await.ok()?;
    // The device now takes the line: ENQ, we ACK, it sends the frame, we ACK, EOT.
    if byte(&mut stream, wait * 2).await? != v2::ENQ {
        return None;
    }
    write_within(&mut stream, &[v2::ACK], WRITE_DEADLINE, "atol probe").await.ok()?;
    let mut buf = Vec::new();
    let deadline = tokio::time::Instant::now() + wait * 2;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let b = byte(&mut stream, left).await?;
        buf.push(b);
        if let Ok((data, _)) = v2::decode(&buf) {
            let _ = write_within(&mut stream, &[v2::ACK], WRITE_DEADLINE, "atol probe").await;
            return parse_device_type(&data, "v2");
        }
        if buf.len() > 512 {
            return None;
        }
    }
}
