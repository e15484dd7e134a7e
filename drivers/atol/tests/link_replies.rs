//! The v3 link reads every reply form an ATOL unit sends: a synchronous reply to the ADD
//! without a task id (`A3 answer`, the form atol4j's `TransportProtocolV3` and
//! KaznachejFA's device-type parser read), an asynchronous `A6 TID answer` on packet id
//! 0xF0, and an empty packet that asks for the ADD again. A scripted peer on an in-memory
//! pipe plays the unit, byte for byte.

use kkm_atol::link::V3Link;
use kkm_atol::v3;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

/// Reads one packet the host sent.
async fn next_packet(peer: &mut DuplexStream, buf: &mut Vec<u8>) -> v3::Packet {
    loop {
        if let Ok(Some((p, used))) = v3::decode(buf) {
            buf.drain(..used);
            return p;
        }
        let mut chunk = [0u8; 256];
        let n = peer.read(&mut chunk).await.unwrap();
        assert!(n > 0, "host closed");
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn reply(peer: &mut DuplexStream, id: u8, data: &[u8]) {
    peer.write_all(&v3::encode(id, data).unwrap()).await.unwrap();
}

#[tokio::test]
async fn synchronous_reply_without_task_id_is_the_result() {
    let (ours, mut peer) = tokio::io::duplex(4096);
    let mut link = V3Link::new(Box::new(ours));
    let device = tokio::spawn(async move {
        let mut buf = Vec::new();
        let add = next_packet(&mut peer, &mut buf).await;
        assert_eq!(add.data[0], v3::ADD);
        reply(&mut peer, add.id, &[v3::RESULT, 0x55, 0x00, 0x07]).await;
        let ack = next_packet(&mut peer, &mut buf).await;
        assert_eq!(ack.data, vec![v3::ACK, add.data[2]]);
        reply(&mut peer, ack.id, &[v3::STOPPED]).await;
        peer
    });
    let answer = link.task(&[0, 0, 0x45], Duration::from_secs(3)).await.unwrap();
    assert_eq!(answer, vec![0x55, 0x00, 0x07]);
    device.await.unwrap();
}

#[tokio::test]
async fn pending_then_asynchronous_result_with_task_id() {
    let (ours, mut peer) = tokio::io::duplex(4096);
    let mut link = V3Link::new(Box::new(ours));
    let device = tokio::spawn(async move {
        let mut buf = Vec::new();
        let add = next_packet(&mut peer, &mut buf).await;
        let tid = add.data[2];
        reply(&mut peer, add.id, &[v3::PENDING]).await;
        reply(&mut peer, v3::ASYNC_ID, &[v3::ASYNC_RESULT, tid, 0x55, 0x00]).await;
        let ack = next_packet(&mut peer, &mut buf).await;
        assert_eq!(ack.data, vec![v3::ACK, tid]);
        peer
    });
    let answer = link.task(&[0, 0, 0x9A, 0], Duration::from_secs(3)).await.unwrap();
    assert_eq!(answer, vec![0x55, 0x00]);
    device.await.unwrap();
}

#[tokio::test]
async fn empty_packet_asks_for_the_add_again() {
    let (ours, mut peer) = tokio::io::duplex(4096);
    let mut link = V3Link::new(Box::new(ours));
    let device = tokio::spawn(async move {
        let mut buf = Vec::new();
        let add = next_packet(&mut peer, &mut buf).await;
        reply(&mut peer, add.id, &[]).await;
        let again = next_packet(&mut peer, &mut buf).await;
        assert_eq!(again, add, "the same packet, same id");
        reply(&mut peer, add.id, &[v3::RESULT, 0x55, 0x00]).await;
        peer
    });
    let answer = link.task(&[0, 0, 0x45], Duration::from_secs(3)).await.unwrap();
    assert_eq!(answer, vec![0x55, 0x00]);
    device.await.unwrap();
}

#[tokio::test]
async fn lost_reply_is_fetched_with_req_and_its_reply_has_no_task_id() {
    let (ours, mut peer) = tokio::io::duplex(4096);
    let mut link = V3Link::new(Box::new(ours));
    let device = tokio::spawn(async move {
        let mut buf = Vec::new();
        let add = next_packet(&mut peer, &mut buf).await;
        let tid = add.data[2];
        // The reply to the ADD is lost; the host polls.
        let req = next_packet(&mut peer, &mut buf).await;
        assert_eq!(req.data, vec![v3::REQ, tid], "a REQ, never a second ADD");
        reply(&mut peer, req.id, &[v3::RESULT, 0x55, 0x00, 0x01]).await;
        peer
    });
    let answer = link.task(&[0, 0, 0x4A, 0, 1, 0, 0, 0, 0, 0], Duration::from_secs(3)).await.unwrap();
    assert_eq!(answer, vec![0x55, 0x00, 0x01]);
    device.await.unwrap();
}
