//! The HTTP server loop, with the limits `axum::serve` does not offer.
//!
//! * **Header-read and idle time-out:** a connection that does not send a complete
//!   request head within [`HEADER_READ_TIMEOUT`] (a slowloris, or a keep-alive
//!   connection left idle) is closed, so it cannot hold a slot forever.
//! * **Connection limit:** at most [`MAX_CONNECTIONS`] at once; more are closed at
//!   accept, so a runaway client cannot exhaust file descriptors or memory.
//! * **Request time-out:** the router's [`crate::api::REQUEST_TIMEOUT`] bounds every
//!   request (long-polls wait at most 60 s).
//! * **Graceful stop:** on shutdown, open requests get a few seconds to finish.
//! * **HTTP/1.1 only:** browsers and salon apps speak HTTP/1.1 to a plain-http
//!   localhost address; without HTTP/2 sniffing a waiting connection costs less memory.

use axum::Router;
use hyper::server::conn::http1::Builder;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

/// How long a client may take to send a request head, and how long a keep-alive
/// connection may sit idle.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Open connections at most (1 000 long-polls fit).
pub const MAX_CONNECTIONS: usize = 2048;

pub async fn serve(listener: TcpListener, app: Router, mut shutdown: watch::Receiver<bool>) {
    let mut builder = Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(HEADER_READ_TIMEOUT);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.wait_for(|v| *v) => break,
        };
        let (stream, _) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of descriptors and the like: do not spin.
                tracing::warn!("HTTP accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!("HTTP: {MAX_CONNECTIONS} connections open; refusing another");
            continue; // dropping the stream closes it
        };
        let (builder, app, watcher) = (builder.clone(), app.clone(), graceful.watcher());
        // hyper's header time-out starts at the first byte: a connection that sends
        // nothing at all is closed here.
        let conn = async move {
            let mut first = [0u8; 1];
            match tokio::time::timeout(HEADER_READ_TIMEOUT, stream.peek(&mut first)).await {
                Ok(Ok(n)) if n > 0 => {}
                _ => return,
            }
            let conn = builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app));
            let _ = watcher.watch(conn).await;
        };
        tokio::spawn(async move {
            conn.await;
            drop(slot);
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(Duration::from_secs(5), graceful.shutdown()).await;
}
