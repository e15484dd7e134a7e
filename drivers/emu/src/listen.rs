//! Serving an emulated register on a pseudo-terminal or a TCP port.
//!
//! A protocol front-end implements [`WireDevice`]: it reads host frames from a byte
//! stream, runs them against the shared [`Emulator`] and writes answers. This module
//! owns what is the same for every protocol: accepting connections, keeping the
//! front-end's link state across reconnects (a device still holds an unsent answer
//! when the cable comes back), and playing dead while a fault has the link down or the
//! power off.

use crate::Emulator;
use async_trait::async_trait;
use kkm_core::port::BoxStream;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// How a front-end's serving of a stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkOutcome {
    /// The host closed the stream (or it failed).
    Closed,
    /// A fault took the link down for this long; link state (a pending answer) survives.
    Down(Duration),
    /// A fault cut the power for this long; link state is lost.
    PowerCut(Duration),
}

/// A protocol front-end for the shared fiscal core.
#[async_trait]
pub trait WireDevice: Send + Sync + 'static {
    /// Link-level state that outlives one connection: a pending answer, packet ids.
    type Session: Send + Default + 'static;

    /// Serves `stream` until it closes or a fault ends the link.
    async fn serve(&self, emu: &Arc<Emulator>, stream: &mut BoxStream, session: &mut Self::Session) -> LinkOutcome;
}

/// Where to listen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    Pty,
    Tcp(SocketAddr),
}

impl Listen {
    pub fn parse(text: &str) -> Result<Listen, String> {
        if text == "pty" {
            return Ok(Listen::Pty);
        }
        let addr = text.strip_prefix("tcp:").ok_or_else(|| format!("{text:?}: expected pty or tcp:HOST:PORT"))?;
        addr.parse().map(Listen::Tcp).map_err(|_| format!("{text:?}: expected tcp:IP:PORT, e.g. tcp:127.0.0.1:7778"))
    }
}

/// A running emulator endpoint.
pub struct Endpoint {
    /// The PTY slave path or `tcp:IP:PORT` a client should open.
    pub port: String,
    pub task: tokio::task::JoinHandle<()>,
}

/// Starts serving `device` in front of `emu`.
///
/// `baud` makes a PTY endpoint deaf to hosts at another line speed (TCP has no speed).
pub async fn start<D: WireDevice>(
    listen: &Listen,
    baud: Option<u32>,
    emu: Arc<Emulator>,
    device: Arc<D>,
) -> std::io::Result<Endpoint> {
    #[cfg(not(unix))]
    let _ = baud; // PTYs are Unix only; TCP has no line speed
    match listen {
        Listen::Tcp(addr) => {
            let listener = tokio::net::TcpListener::bind(addr).await?;
            let port = format!("tcp:{}", listener.local_addr()?);
            let task = tokio::spawn(serve_tcp(listener, emu, device));
            Ok(Endpoint { port, task })
        }
        #[cfg(unix)]
        Listen::Pty => {
            let pty = kkm_core::platform::open_pty()?;
            let port = pty.slave_path.clone();
            let task = tokio::spawn(serve_pty(pty, baud, emu, device));
            Ok(Endpoint { port, task })
        }
        #[cfg(not(unix))]
        Listen::Pty => Err::<Endpoint, _>(std::io::Error::other(
            "pseudo-terminals exist only on Unix; use --listen tcp:127.0.0.1:7778 (or a com0com pair)",
        )),
    }
}

async fn serve_tcp<D: WireDevice>(listener: tokio::net::TcpListener, emu: Arc<Emulator>, device: Arc<D>) {
    let mut session = D::Session::default();
    let mut dead_until: Option<tokio::time::Instant> = None;
    loop {
        let Ok((sock, peer)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        if dead_until.is_some_and(|t| tokio::time::Instant::now() < t) {
            drop(sock); // no link: the connection dies at once
            continue;
        }
        let _ = sock.set_nodelay(true);
        tracing::debug!("emulator: host connected from {peer}");
        let mut stream: BoxStream = Box::new(sock);
        match device.serve(&emu, &mut stream, &mut session).await {
            LinkOutcome::Closed => {}
            LinkOutcome::Down(d) => dead_until = Some(tokio::time::Instant::now() + d),
            LinkOutcome::PowerCut(d) => {
                session = D::Session::default();
                dead_until = Some(tokio::time::Instant::now() + d);
            }
        }
    }
}

#[cfg(unix)]
async fn serve_pty<D: WireDevice>(pty: kkm_core::platform::Pty, baud: Option<u32>, emu: Arc<Emulator>, device: Arc<D>) {
    let _keep = pty.slave_keepalive;
    let Ok(mut pty_stream) = kkm_core::platform::PtyStream::new(pty.master) else {
        tracing::error!("emulator: cannot register the pty with the reactor");
        return;
    };
    pty_stream.require_baud(baud);
    let mut stream: BoxStream = Box::new(pty_stream);
    let mut session = D::Session::default();
    loop {
        match device.serve(&emu, &mut stream, &mut session).await {
            LinkOutcome::Closed => tokio::time::sleep(Duration::from_millis(20)).await,
            LinkOutcome::Down(d) => play_dead(&mut stream, d).await,
            LinkOutcome::PowerCut(d) => {
                session = D::Session::default();
                play_dead(&mut stream, d).await;
            }
        }
    }
}

/// Reads and drops everything the host sends for `d`: a serial line with no device.
#[cfg(unix)]
async fn play_dead(stream: &mut BoxStream, d: Duration) {
    let until = tokio::time::Instant::now() + d;
    let mut buf = [0u8; 256];
    use tokio::io::AsyncReadExt;
    while let Ok(Ok(n)) = tokio::time::timeout_at(until, stream.read(&mut buf)).await {
        if n == 0 {
            tokio::time::sleep_until(until).await;
            break;
        }
    }
}
