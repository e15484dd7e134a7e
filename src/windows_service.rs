//! The agent as a Windows service (most salon PCs run Windows).
//!
//! Why it exists: a console program started by the Service Control Manager (SCM) is
//! killed after 30 s unless it talks the service protocol: report "running", accept
//! Stop and Shutdown, report "stopped". This module does exactly that around the same
//! daemon `serve` runs, through the `windows-service` crate.
//!
//! * `kkm-agent windows-service install [--config FILE]` registers the service
//!   (automatic start, LocalSystem, restart 2 s / 10 s / 60 s after a failure);
//!   `uninstall` stops and removes it. Both need an administrator's console.
//! * The SCM starts `kkm-agent.exe windows-service run --config FILE`.
//! * Data directory rule, like systemd's `StateDirectory=`: a service keeps its queue,
//!   token and logs in `%ProgramData%\kkm-agent\data` and reads
//!   `%ProgramData%\kkm-agent\config.toml`, never a profile folder of LocalSystem.
//!   `data_dir` in the config still wins.
//!
//! Compile-checked on Linux with `cargo check --target x86_64-pc-windows-gnu`; not run
//! under a real SCM in CI (see README).

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;
use windows_service::service::{
    ServiceAccess, ServiceAction, ServiceActionType, ServiceControl, ServiceControlAccept, ServiceErrorControl,
    ServiceExitCode, ServiceFailureActions, ServiceFailureResetPeriod, ServiceInfo, ServiceStartType, ServiceState,
    ServiceStatus, ServiceType,
};
use windows_service::service_control_handler::{self, ServiceControlHandlerResult};
use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};
use windows_service::{define_windows_service, service_dispatcher};

pub const SERVICE_NAME: &str = "kkm-agent";
const DISPLAY_NAME: &str = "kkm-agent (фискальный регистратор)";

/// The config path the SCM passed; set once before the dispatcher starts.
static CONFIG: OnceLock<Option<PathBuf>> = OnceLock::new();
/// True in the process the SCM started: the data-directory rule applies.
static IN_SERVICE: OnceLock<bool> = OnceLock::new();

/// `%ProgramData%\kkm-agent`, the home of the service's config and data.
pub fn program_data_dir() -> PathBuf {
    let base = std::env::var_os("ProgramData").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(r"C:\ProgramData"));
    base.join("kkm-agent")
}

/// The service's data directory, when this process runs as the service.
pub fn service_data_dir() -> Option<PathBuf> {
    IN_SERVICE.get().copied().unwrap_or(false).then(|| program_data_dir().join("data"))
}

/// The service's default config path, when this process runs as the service.
pub fn service_config_path() -> Option<PathBuf> {
    IN_SERVICE.get().copied().unwrap_or(false).then(|| program_data_dir().join("config.toml"))
}

/// Hands the process to the SCM; returns when the service has stopped.
pub fn run(config: Option<PathBuf>) -> windows_service::Result<()> {
    let _ = CONFIG.set(config);
    let _ = IN_SERVICE.set(true);
    service_dispatcher::start(SERVICE_NAME, ffi_service_main)
}

define_windows_service!(ffi_service_main, service_main);

fn service_main(_arguments: Vec<OsString>) {
    if let Err(e) = run_service() {
        tracing::error!("windows service: {e}");
    }
}

fn status(state: ServiceState, accept: ServiceControlAccept, exit: u32, wait_hint: Duration) -> ServiceStatus {
    ServiceStatus {
        service_type: ServiceType::OWN_PROCESS,
        current_state: state,
        controls_accepted: accept,
        exit_code: ServiceExitCode::Win32(exit),
        checkpoint: 0,
        wait_hint,
        process_id: None,
    }
}

fn run_service() -> windows_service::Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let handler = move |event| match event {
        ServiceControl::Stop | ServiceControl::Shutdown => {
            let _ = stop_tx.send(true);
            ServiceControlHandlerResult::NoError
        }
        ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
        _ => ServiceControlHandlerResult::NotImplemented,
    };
    let handle = service_control_handler::register(SERVICE_NAME, handler)?;
    handle.set_service_status(status(ServiceState::StartPending, ServiceControlAccept::empty(), 0, Duration::from_secs(30)))?;

    let exit = match serve_until_stopped(stop_rx, &handle) {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!("windows service: {e}");
            1
        }
    };
    handle.set_service_status(status(ServiceState::Stopped, ServiceControlAccept::empty(), exit, Duration::default()))
}

/// Loads the config, starts the daemon, reports "running", waits for Stop, then lets
/// the jobs in flight finish (or park) before reporting "stopped".
fn serve_until_stopped(
    mut stop: tokio::sync::watch::Receiver<bool>,
    handle: &service_control_handler::ServiceStatusHandle,
) -> Result<(), String> {
    let path = CONFIG.get().cloned().flatten().unwrap_or_else(crate::config::Config::default_path);
    let config = crate::config::Config::load(&path).map_err(|e| format!("{}: {}", path.display(), e.en))?;
    let _log = crate::cli::init_logging(&config.data_dir());
    let rt = crate::cli::runtime().map_err(|e| e.to_string())?;
    rt.block_on(async {
        let running = crate::daemon::start(&config).await.map_err(|e| e.en)?;
        tracing::info!(addr = %running.addr, "kkm-agent service running");
        let _ = handle.set_service_status(status(ServiceState::Running, ServiceControlAccept::STOP | ServiceControlAccept::SHUTDOWN, 0, Duration::default()));
        while !*stop.borrow() {
            if stop.changed().await.is_err() {
                break;
            }
        }
        let _ = handle.set_service_status(status(ServiceState::StopPending, ServiceControlAccept::empty(), 0, Duration::from_secs(30)));
        tracing::info!("service stop: finishing the jobs in flight");
        running.stop().await;
        Ok(())
    })
}

/// Registers the service to start automatically and restart after a failure.
pub fn install(config: Option<PathBuf>) -> windows_service::Result<()> {
    let manager = ServiceManager::local_computer(None::<&str>, ServiceManagerAccess::CONNECT | ServiceManagerAccess::CREATE_SERVICE)?;
    let exe = std::env::current_exe().map_err(windows_service::Error::Winapi)?;
    let mut args = vec![OsString::from("windows-service"), OsString::from("run")];
    if let Some(c) = config {
        args.push(OsString::from("--config"));
        args.push(c.into_os_string());
    }
    let info = ServiceInfo {
        name: OsString::from(SERVICE_NAME),
        display_name: OsString::from(DISPLAY_NAME),
        service_type: ServiceType::OWN_PROCESS,
        start_type: ServiceStartType::AutoStart,
        error_control: ServiceErrorControl::Normal,
        executable_path: exe,
        launch_arguments: args,
        dependencies: vec![],
        account_name: None, // LocalSystem: it may open COM ports for every user
        account_password: None,
    };
    let service = manager.create_service(&info, ServiceAccess::CHANGE_CONFIG | ServiceAccess::START)?;
    service.set_description("Очередь чеков и связь с ККТ для программы салона / receipt queue for the fiscal register")?;
    let restart = |secs| ServiceAction { action_type: ServiceActionType::Restart, delay: Duration::from_secs(secs) };
    service.update_failure_actions(ServiceFailureActions {
        reset_period: ServiceFailureResetPeriod::After(Duration::from_secs(24 * 3600)),
        reboot_msg: None,
        command: None,
        actions: Some(vec![restart(2), restart(10), restart(60)]),
    })?;
    service.set_failure_actions_on_non_crash_failures(true)?;
    Ok(())
}

/// Stops the service if it runs, then removes it.
pub fn uninstall() -> windows_service::Result<()> {
    let manager = ServiceManager::local_computer(None::<&str>, ServiceManagerAccess::CONNECT)?;
    let service = manager.open_service(SERVICE_NAME, ServiceAccess::QUERY_STATUS | ServiceAccess::STOP | ServiceAccess::DELETE)?;
    if service.query_status()?.current_state != ServiceState::Stopped {
        let _ = service.stop();
    }
    service.delete()
}
