//! The daemon: opens the queue, starts one worker per device and serves the API until
//! Ctrl-C or SIGTERM, then lets each worker finish (or leave in flight, for recovery)
//! the job it is on.

use crate::api::{self, AppState, DeviceEntry};
use crate::config::Config;
use crate::queue::worker::{UpkeepOptions, Worker};
use crate::queue::Store;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The file in the data directory where the daemon writes its API's address.
pub const API_ADDRESS_FILE: &str = "api-address";

/// A running daemon.
pub struct Running {
    pub addr: SocketAddr,
    pub token: String,
    pub store: Store,
    shutdown: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    _lock: crate::datadir_lock::DataDirLock,
}

#[derive(Debug, thiserror::Error)]
#[error("{code}: {en}")]
pub struct StartError {
    pub code: &'static str,
    pub ru: String,
    pub en: String,
}

fn start_err(code: &'static str, what_ru: &str, what_en: &str, e: impl std::fmt::Display) -> StartError {
    StartError { code, ru: format!("{what_ru}: {e}"), en: format!("{what_en}: {e}") }
}

/// Starts workers and the HTTP server.
pub async fn start(config: &Config) -> Result<Running, StartError> {
    let data = config.data_dir();
    std::fs::create_dir_all(&data).map_err(|e| start_err("daemon.data_dir", "Не удалось создать папку данных", "Cannot create the data dir", e))?;
    crate::private_files::secure_data_dir(&data)
        .map_err(|e| start_err("daemon.data_dir", "Не удалось закрыть доступ к папке данных", "Cannot make the data dir private", e))?;
    // Before the database is touched: one agent per queue.
    let lock = crate::datadir_lock::acquire(&data).map_err(|e| StartError {
        code: "daemon.already_running",
        ru: e.ru(),
        en: e.to_string(),
    })?;
    let token = api::security::load_or_create_token(&data)
        .map_err(|e| start_err("daemon.token", "Не удалось создать токен", "Cannot create the token", e))?;
    let store = Store::open(&data.join("queue.sqlite"))
        .map_err(|e| start_err("daemon.database", "Не удалось открыть базу очереди", "Cannot open the queue database", e))?;
    // Bound before any worker starts, so a daemon that cannot serve prints nothing.
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| start_err("daemon.listen", "Не удалось занять адрес API", "Cannot listen", e))?;
    let (tx, rx) = watch::channel(false);
    let mut devices = Vec::new();
    let mut tasks = Vec::new();
    for d in &config.devices {
        let driver = crate::devices::build_driver(d)
            .map_err(|e| start_err("config.device_invalid", "Неверная ККТ в настройках", "Bad device in the config", e))?;
        let limits = driver.profile().limits;
        let upkeep = UpkeepOptions {
            health_every: config.policy.health_check_every.0,
            release_after: d.release_port_after_idle.0,
            zone: d.zone(),
        };
        let (handle, task) = Worker::spawn(d.id.clone(), driver, store.clone(), config.policy.clone(), upkeep, rx.clone());
        tasks.push(task);
        devices.push(DeviceEntry { id: d.id.clone(), model: d.model.clone(), port: d.port.clone(), limits, handle });
    }
    let committer = crate::queue::committer::Committer::start(store.clone())
        .map_err(|e| start_err("daemon.commit_thread", "Не удалось запустить запись очереди", "Cannot start the queue writer", e))?;
    let state = AppState { store: store.clone(), committer, devices: Arc::new(devices), token: Arc::new(token.clone()),
        allowed_origins: Arc::new(config.allowed_origins.clone()),
    };
    let addr = listener.local_addr().map_err(|e| start_err("daemon.listen", "Адрес API", "Listen address", e))?;
    // Where the API really listens (the config may say port 0), for `device … check`
    // and `diag` to reach this daemon.
    if let Err(e) = std::fs::write(data.join(API_ADDRESS_FILE), format!("http://{addr}\n")) {
        tracing::warn!("cannot write {}: {e}", API_ADDRESS_FILE);
    }
    let app = api::router(state);
    tasks.push(tokio::spawn(crate::http_server::serve(listener, app, rx.clone())));
    tracing::info!(%addr, "kkm-agent listening");
    Ok(Running { addr, token, store, shutdown: tx, tasks, _lock: lock })
}

impl Running {
    /// Asks everything to stop and waits (bounded) for workers to settle.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(70), t).await;
        }
    }
}

/// Waits for Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// `kkm-agent serve`.
pub async fn serve(config: Config) -> Result<(), StartError> {
    let running = start(&config).await?;
    println!("kkm-agent: http://{}/  (API: /api/v1, token: kkm-agent token)", running.addr);
    println!("Страница кассира / cashier page: http://{}/#token={}", running.addr, running.token);
    shutdown_signal().await;
    tracing::info!("shutting down: finishing the jobs in flight");
    running.stop().await;
    Ok(())
}
