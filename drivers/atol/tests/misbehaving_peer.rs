//! A peer that is not a well-behaved ATOL unit must end every command in a `link.*`
//! error within the command's time budget: one that floods the line with noise and
//! never reads, and one that accepts the connection and then neither reads nor writes.
//! Real TCP sockets; the peer's receive buffer is made small so a host that answers
//! noise with writes fills it fast.

use kkm_atol::driver::LinkVersion;
use kkm_atol::{AtolDriver, NEVA_01_F};
use kkm_core::port::PortSpec;
use kkm_core::FiscalDriver;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpSocket;
use tokio::time::Instant;

/// What the peer does after accepting.
#[derive(Clone, Copy)]
enum Peer {
    /// Writes this pattern over and over, never reads.
    Flood(&'static [u8]),
    /// Never reads, never writes.
    Silent,
}

async fn start(peer: Peer) -> PortSpec {
    let sock = TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(2048).unwrap();
    sock.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = sock.listen(8).unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            let Ok((mut s, _)) = listener.accept().await else { return };
            match peer {
                Peer::Flood(pattern) => {
                    tokio::spawn(async move {
                        let chunk: Vec<u8> = pattern.iter().copied().cycle().take(4096).collect();
                        while s.write_all(&chunk).await.is_ok() {}
                    });
                }
                Peer::Silent => held.push(s),
            }
        }
    });
    PortSpec::Tcp { host: "127.0.0.1".into(), port }
}

/// Runs `status` against the peer on its own task, so a hang cannot hang the test.
async fn status_against(peer: Peer, link: LinkVersion) -> (kkm_core::error::DriverError, Duration) {
    let port = start(peer).await;
    let t0 = Instant::now();
    let job = tokio::spawn(async move {
        let mut d = AtolDriver::new(port, None, &NEVA_01_F).with_link(link);
        d.status().await
    });
    let r = tokio::time::timeout(Duration::from_secs(25), job).await.expect("the driver hung on a misbehaving peer");
    let e = r.unwrap().expect_err("a misbehaving peer cannot give a status");
    (e, t0.elapsed())
}

/// The status command's budget: its 8 s answer time plus the connect-time ABORT and the
/// write deadline, with slack for a loaded machine.
const BUDGET: Duration = Duration::from_secs(14);

/// Bad packets: a start byte, a one-byte length, and a CRC that never matches.
const V3_NOISE: &[u8] = &[0xFE, 0x01, 0x00, 0x00, 0x00, 0x00, 0x17];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v3_flooding_peer_that_never_reads_ends_in_link_error() {
    let (e, took) = status_against(Peer::Flood(V3_NOISE), LinkVersion::V3).await;
    assert!(e.code().starts_with("link."), "{e:?}");
    assert!(took < BUDGET, "took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v3_silent_peer_that_never_reads_ends_in_no_answer() {
    let (e, took) = status_against(Peer::Silent, LinkVersion::V3).await;
    assert_eq!(e.code(), "link.no_answer", "{e:?}");
    assert!(took < BUDGET, "took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_flooding_peer_that_never_reads_ends_in_link_error() {
    // ACKs grant the line and accept the frame; then the flood never becomes an answer.
    let (e, took) = status_against(Peer::Flood(&[0x06]), LinkVersion::V2).await;
    assert!(e.code().starts_with("link."), "{e:?}");
    assert!(took < BUDGET, "took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_noise_flood_ends_in_link_error() {
    let (e, took) = status_against(Peer::Flood(&[0x02, 0x55, 0x10, 0x99]), LinkVersion::V2).await;
    assert!(e.code().starts_with("link."), "{e:?}");
    assert!(took < BUDGET, "took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_silent_peer_that_never_reads_ends_in_no_answer() {
    let (e, took) = status_against(Peer::Silent, LinkVersion::V2).await;
    assert_eq!(e.code(), "link.no_answer", "{e:?}");
    assert!(took < BUDGET, "took {took:?}");
}

/// A write into a peer that never reads must give up at the write deadline, not block.
/// The in-memory pipe holds 16 bytes; the task is larger.
#[tokio::test]
async fn v3_write_into_a_full_pipe_gives_up_at_the_deadline() {
    let (ours, _theirs) = tokio::io::duplex(16);
    let mut link = kkm_atol::link::V3Link::new(Box::new(ours));
    let t0 = Instant::now();
    let task = vec![0u8; 200];
    let r = tokio::time::timeout(Duration::from_secs(10), link.task(&task, Duration::from_secs(8))).await;
    let e = r.expect("the write blocked forever").expect_err("nobody reads");
    assert_eq!(e.code(), "link.no_answer", "{e:?}");
    assert!(t0.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn v2_write_into_a_full_pipe_gives_up_at_the_deadline() {
    let (ours, mut theirs) = tokio::io::duplex(16);
    // Grant the line, then read nothing more.
    theirs.write_all(&[0x06]).await.unwrap();
    let mut link = kkm_atol::link_v2::V2Link::new(Box::new(ours));
    let task = vec![0x11u8; 200];
    let r = tokio::time::timeout(Duration::from_secs(10), link.task(&task, Duration::from_secs(8))).await;
    let e = r.expect("the write blocked forever").expect_err("nobody reads");
    assert!(e.code().starts_with("link."), "{e:?}");
}
