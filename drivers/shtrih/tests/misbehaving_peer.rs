//! A peer that is not a well-behaved Shtrih-M unit must end every command in a `link.*`
//! error within the command's time budget: one that floods the line and never reads,
//! and one that accepts the connection and then neither reads nor writes. Real TCP.

use kkm_core::port::PortSpec;
use kkm_core::FiscalDriver;
use kkm_shtrih::{ShtrihDriver, AZUR_01F};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpSocket;
use tokio::time::Instant;

#[derive(Clone, Copy)]
enum Peer {
    Flood(&'static [u8]),
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

async fn status_against(peer: Peer) -> (kkm_core::error::DriverError, Duration) {
    let port = start(peer).await;
    let t0 = Instant::now();
    let job = tokio::spawn(async move { ShtrihDriver::new(port, None, &AZUR_01F).status().await });
    let r = tokio::time::timeout(Duration::from_secs(40), job).await.expect("the driver hung on a misbehaving peer");
    (r.unwrap().expect_err("a misbehaving peer cannot give a status"), t0.elapsed())
}

/// The status command's budget: its 10 s answer time, the ENQ settling before it and the
/// write deadline, with slack for a loaded machine.
const BUDGET: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flood_of_ff_bytes_that_never_reads_ends_in_link_error() {
    // 0xFF is the stray byte the link skips while waiting for a control byte.
    let (e, took) = status_against(Peer::Flood(&[0xFF])).await;
    assert!(e.code().starts_with("link."), "{e:?}");
    assert!(took < BUDGET, "took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flood_of_noise_that_never_reads_ends_in_link_error() {
    let (e, took) = status_against(Peer::Flood(&[0x02, 0x05, 0x10, 0x99, 0x15, 0x06])).await;
    assert!(e.code().starts_with("link."), "{e:?}");
    assert!(took < BUDGET, "took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_peer_that_never_reads_ends_in_no_answer() {
    let (e, took) = status_against(Peer::Silent).await;
    assert!(e.code().starts_with("link."), "{e:?}");
    assert!(took < BUDGET, "took {took:?}");
}
