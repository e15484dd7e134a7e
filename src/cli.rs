//! The command line.
//!
//! `serve` runs the daemon; `demo` runs it next to an emulated register; `device` talks
//! to one register directly (for engineers and for trying a real unit); `emulate` runs
//! an emulator; `token` prints the API token; `decode` explains a sniffed port capture.
//!
//! Every failure prints a stable code, Russian and English text and the action to take,
//! and exits non-zero. Never a backtrace.

use crate::emulate::{EmuProtocol, EmulatedModel, EmulatorOptions};
use clap::{Parser, Subcommand};
use kkm_core::{DriverError, Money, Receipt};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(name = "kkm-agent", version, about = "Fiscal-register agent for Azur-01F and Neva-01-F / Агент ККТ")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the daemon (HTTP API + receipt queue).
    Serve {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Run the agent against an emulated register and print a sample receipt.
    Demo {
        #[arg(long, value_enum, default_value = "azur-01f")]
        model: EmulatedModel,
        /// Print one receipt and exit instead of serving until Ctrl-C.
        #[arg(long)]
        once: bool,
    },
    /// Print the API bearer token (created on first use).
    Token {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Run a register emulator on a pseudo-terminal or a TCP port.
    Emulate(EmulateArgs),
    /// Work with one register directly.
    Device(DeviceArgs),
    /// Reconcile the program's figures with the shift on the register (through the
    /// running agent): `kkm-agent reconcile --device salon --program-cash 22212,50`.
    Reconcile(crate::cli_reconcile::ReconcileArgs),
    /// Find the register on every port and say what is wrong and what to do (no
    /// arguments needed); exits 1 when any finding is an error.
    Diag(crate::cli_diag::DiagArgs),
    #[command(about = crate::cli_decode::ABOUT, long_about = crate::cli_decode::LONG_ABOUT)]
    Decode(crate::cli_decode::DecodeArgs),
    /// Windows: install, uninstall or run the agent as a Windows service.
    #[cfg(windows)]
    #[command(name = "windows-service", subcommand)]
    WindowsService(WindowsServiceAction),
}

#[cfg(windows)]
#[derive(Subcommand, Debug)]
pub enum WindowsServiceAction {
    /// Register the service (automatic start, restart after a failure). Run as administrator.
    Install {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Stop and remove the service. Run as administrator.
    Uninstall,
    /// What the service manager starts; not for a console.
    Run {
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(clap::Args, Debug)]
pub struct EmulateArgs {
    #[arg(long, value_enum)]
    pub model: EmulatedModel,
    /// The wire protocol: Neva-01-F speaks `umka` (HTTP, the default) or `atol`/`atol-v2`.
    #[arg(long, value_enum)]
    pub protocol: Option<EmuProtocol>,
    /// `pty` or `tcp:IP:PORT` (default: `pty`; for `umka`, `tcp:127.0.0.1:8088`).
    #[arg(long)]
    pub listen: Option<String>,
    /// The ФН state file (default: in the data dir, per model).
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// Keep the ФН in memory only.
    #[arg(long, conflicts_with = "state")]
    pub ephemeral: bool,
    /// Control channel `IP:PORT` (lines such as `paper out`, `clock +25h`, `fault lose-answer`).
    #[arg(long)]
    pub control: Option<String>,
    /// Inject a fault, e.g. `lose-answer@receipt-close`, `nak=5`, `power-cut@receipt-item`.
    #[arg(long = "fault")]
    pub faults: Vec<String>,
    /// Factory number (ЗН) of the emulated unit.
    #[arg(long)]
    pub serial: Option<String>,
    /// The unit reports an all-zero factory number (слетел ЗН).
    #[arg(long)]
    pub serial_lost: bool,
    /// Do not print documents to stdout.
    #[arg(long)]
    pub quiet: bool,
    /// On a PTY, hear only a host at this line speed (for testing speed detection).
    #[arg(long)]
    pub baud: Option<u32>,
    /// Neva-01-F: speak the older ATOL v2 link layer (STX/ETX) instead of v3.
    #[arg(long)]
    pub atol_v2: bool,
}

#[derive(clap::Args, Debug)]
pub struct DeviceArgs {
    /// `COM3`, `/dev/ttyACM0` or `tcp:HOST:PORT`.
    #[arg(long)]
    pub port: String,
    /// `azur-01f`, `neva-01-f` (not needed for `detect`).
    #[arg(long, default_value = "auto")]
    pub model: String,
    #[arg(long)]
    pub baud: Option<u32>,
    /// Override the model's protocol: `shtrih`, `atol`, `atol-v2` or `umka`.
    #[arg(long)]
    pub protocol: Option<String>,
    /// УМКА (http:// ports): the cashier number, 1–99 (99 = administrator). Default 1.
    #[arg(long)]
    pub cashier: Option<u32>,
    /// УМКА: the cashier's password (digits). Default: the cashier's number.
    #[arg(long)]
    pub password: Option<String>,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
    /// Operator (cashier) password: receipts, status, cash moves (Shtrih: FF46, 10h, 50h…).
    #[arg(long)]
    pub operator_password: Option<u32>,
    /// Administrator password: ФН commands and reports (Shtrih: FF01…FF45, 40h, 41h).
    #[arg(long)]
    pub admin_password: Option<u32>,
    /// The agent's config: `check` asks the running agent when it drives this port
    /// (default: the usual config file).
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub action: DeviceAction,
}

#[derive(Subcommand, Debug, Clone)]
pub enum DeviceAction {
    /// Shift, receipt, paper and clock.
    Status,
    /// ЗН, РНМ, ИНН, ФН number, model and firmware.
    Info,
    /// Full health check with Russian explanations and actions. Exit code: 0 no error
    /// finding, 1 an error finding, 2 the register did not answer.
    Check {
        /// The factory number from the sticker on the case, to confirm against the РНМ.
        #[arg(long)]
        serial: Option<String>,
        /// The register's time zone (its clock keeps local time): `+05:00`, `UTC+5`,
        /// `МСК+2`, `Asia/Yekaterinburg`. Default: Moscow, UTC+3.
        #[arg(long)]
        timezone: Option<String>,
    },
    /// Find the protocol and speed the port speaks.
    Detect,
    /// Open the shift; `--cashier` puts the cashier (tag 1021, and 1203 with `--cashier-inn`) on it.
    OpenShift {
        #[arg(long)]
        cashier: Option<String>,
        #[arg(long, requires = "cashier")]
        cashier_inn: Option<String>,
    },
    XReport,
    /// Close the shift (Z-report); `--cashier` as for open-shift.
    ZReport {
        #[arg(long)]
        cashier: Option<String>,
        #[arg(long, requires = "cashier")]
        cashier_inn: Option<String>,
    },
    /// Cash in, in roubles (e.g. 1000 or 1000,50).
    CashIn {
        #[arg(allow_hyphen_values = true)]
        sum: String,
    },
    /// Cash out, in roubles.
    CashOut {
        #[arg(allow_hyphen_values = true)]
        sum: String,
    },
    /// Fiscalise a receipt from a JSON file (money in kopecks).
    Receipt { file: PathBuf },
    /// Cancel a receipt left open on the device.
    Cancel,
    /// Money counters of the current shift, without printing.
    Totals {
        /// Print an X-report as well.
        #[arg(long)]
        x_report: bool,
    },
    /// Read a fiscal document from the ФН by number.
    Document { number: u32 },
}

/// A CLI failure, explained.
#[derive(Debug)]
pub struct CliError {
    pub code: String,
    pub ru: String,
    pub en: String,
    pub action: String,
    /// The process exit code (1 unless said otherwise).
    pub exit: u8,
    /// The command already printed its outcome; only the exit code is left to give.
    pub reported: bool,
}

impl CliError {
    pub fn new(code: &str, ru: impl Into<String>, en: impl Into<String>, action: impl Into<String>) -> CliError {
        CliError { code: code.into(), ru: ru.into(), en: en.into(), action: action.into(), exit: 1, reported: false }
    }
    /// A command that printed its own outcome (e.g. `check` with an error finding) and
    /// must only exit with `code`.
    pub fn exit_only(code: u8) -> CliError {
        CliError { exit: code, reported: true, ..CliError::new("cli.exit", "", "", "") }
    }
    fn print(&self, json: bool) {
        if json {
            let v = serde_json::json!({"error": {"code": self.code, "title_ru": self.ru, "title_en": self.en, "action_ru": self.action}});
            println!("{v}");
        } else {
            eprintln!("Ошибка [{}]: {}", self.code, self.ru);
            eprintln!("  {}", self.en);
            if !self.action.is_empty() {
                eprintln!("  Что делать: {}", self.action);
            }
        }
    }
}

impl From<DriverError> for CliError {
    fn from(e: DriverError) -> CliError {
        CliError::new(e.code(), e.title_ru(), e.title_en(), e.action_ru())
    }
}

pub fn run() -> ExitCode {
    crate::diagnostics::init_local_offset();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { ExitCode::from(2) } else { ExitCode::SUCCESS };
        }
    };
    if let Command::Decode(a) = &cli.command {
        return crate::cli_decode::run(a); // pure: no runtime, its own exit codes
    }
    let json = matches!(&cli.command, Command::Device(d) if d.json) || matches!(&cli.command, Command::Reconcile(r) if r.json);
    #[cfg(windows)]
    if let Command::WindowsService(action) = &cli.command {
        return windows_service_command(action);
    }
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(dispatch(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.reported => ExitCode::from(e.exit),
        Err(e) => {
            e.print(json);
            ExitCode::from(e.exit.max(1))
        }
    }
}

/// The daemon's runtime: two workers are plenty for one shop's traffic.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        // The queue is one SQLite connection behind a mutex: more than a few blocking
        // threads only queue on it, and each costs a stack and a malloc arena (1 000
        // long-polls once spawned hundreds of them).
        .max_blocking_threads(8)
        .enable_all()
        .build()
}

#[cfg(windows)]
fn windows_service_command(action: &WindowsServiceAction) -> ExitCode {
    use crate::windows_service as ws;
    let result = match action {
        WindowsServiceAction::Run { config } => ws::run(config.clone()),
        WindowsServiceAction::Install { config } => ws::install(config.clone()),
        WindowsServiceAction::Uninstall => ws::uninstall(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            CliError::new(
                "service.windows_failed",
                format!("Служба Windows: {e}"),
                format!("Windows service: {e}"),
                "Запустите командную строку от имени администратора; журнал событий Windows покажет подробности.",
            )
            .print(false);
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        // Handled in `run` before the runtime exists: the service builds its own.
        #[cfg(windows)]
        Command::WindowsService(_) => Ok(()),
        Command::Emulate(a) => emulate(a).await,
        Command::Device(a) => crate::cli_device::run(a).await,
        Command::Reconcile(a) => crate::cli_reconcile::run(a).await,
        Command::Diag(a) => crate::cli_diag::run(a).await,
        Command::Serve { config } => {
            let config = load_config(config)?;
            let _guard = init_logging(&config.data_dir());
            crate::daemon::serve(config).await.map_err(|e| CliError::new(e.code, e.ru, e.en, "Проверьте настройки и права на папку данных."))
        }
        Command::Token { config } => {
            // The daemon's token, from the daemon's config: never a new one made here,
            // which the daemon would not accept.
            let data = load_config(config)?.data_dir();
            let t = crate::api::security::read_token(&data).map_err(|e| {
                CliError::new(
                    "daemon.token_missing",
                    format!("Токен не найден в {}: {e}", data.display()),
                    format!("No token in {}: {e}", data.display()),
                    "Запустите агент (kkm-agent serve или служба) хотя бы раз: он создаёт токен; запускайте эту команду от имени пользователя службы.",
                )
            })?;
            println!("{t}");
            Ok(())
        }
        Command::Demo { model, once } => crate::cli_demo::demo(model, once).await,
        Command::Decode(_) => Ok(()), // run before the runtime starts, in `run`
    }
}

async fn emulate(a: EmulateArgs) -> Result<(), CliError> {
    let bad = |code: &str, ru: String, en: String| CliError::new(code, ru, en, "Исправьте параметр командной строки.");
    let probe = EmulatorOptions { protocol: a.protocol, atol_v2: a.atol_v2, ..EmulatorOptions::new(a.model, kkm_emu::Listen::Pty) };
    let protocol = probe
        .resolved_protocol()
        .map_err(|e| bad("cli.protocol_invalid", format!("Неверный --protocol: {e}"), format!("Bad --protocol: {e}")))?;
    let listen_text = a.listen.clone().unwrap_or_else(|| {
        if protocol == EmuProtocol::Umka { "tcp:127.0.0.1:8088".into() } else { "pty".into() }
    });
    let listen = kkm_emu::Listen::parse(&listen_text)
        .map_err(|e| bad("cli.listen_invalid", format!("Неверный адрес --listen: {e}"), format!("Bad --listen: {e}")))?;
    if protocol == EmuProtocol::Umka && listen == kkm_emu::Listen::Pty {
        return Err(bad(
            "cli.listen_invalid",
            "API УМКА работает по HTTP: укажите --listen tcp:IP:ПОРТ (например tcp:127.0.0.1:8088), а не pty".into(),
            "The УМКА API is HTTP: use --listen tcp:IP:PORT (e.g. tcp:127.0.0.1:8088), not pty".into(),
        ));
    }
    let control = a
        .control
        .as_deref()
        .map(|c| c.trim_start_matches("tcp:").parse())
        .transpose()
        .map_err(|_| bad("cli.control_invalid", "Неверный адрес --control (нужно IP:PORT)".into(), "Bad --control (IP:PORT)".into()))?;
    let faults = a
        .faults
        .iter()
        .map(|f| kkm_emu::FaultSpec::parse(f))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad("cli.fault_invalid", format!("Неверный --fault: {e}"), format!("Bad --fault: {e}")))?;
    let state = if a.ephemeral {
        None
    } else {
        Some(a.state.unwrap_or_else(|| default_data_dir().join("emulators").join(format!("{}.json", a.model.key()))))
    };
    let opts = EmulatorOptions {
        model: a.model,
        listen,
        state: state.clone(),
        control,
        faults,
        baud: a.baud,
        atol_v2: a.atol_v2,
        protocol: a.protocol,
        serial: a.serial,
        serial_lost: a.serial_lost,
        echo_tape: !a.quiet,
    };
    let running = crate::emulate::start(opts).await.map_err(|e| {
        CliError::new("emulator.start_failed", format!("Эмулятор не запустился: {e}"), format!("Emulator failed to start: {e}"),
            "Проверьте, что порт свободен и папка состояния доступна для записи.")
    })?;
    println!("Эмулятор {} ({}) запущен / emulator running", a.model.key(), protocol.name());
    println!("port: {}", running.port);
    if let Some(c) = running.control {
        println!("control: {c}");
    }
    println!("ofd: {}", running.ofd);
    if let Some(s) = &state {
        println!("state: {}", s.display());
    }
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = tokio::signal::ctrl_c().await;
    Ok(())
}

/// Parses a sum in roubles for cash in/out.
pub fn parse_sum(text: &str) -> Result<Money, CliError> {
    match Money::parse_roubles(text) {
        Ok(m) if m.0 > 0 => Ok(m),
        Ok(_) => Err(CliError::new("cli.sum_invalid", "Сумма должна быть больше нуля", "The sum must be above zero", "")),
        Err(e) => Err(CliError::new("cli.sum_invalid", format!("Неверная сумма: {e}"), format!("Bad sum: {e}"),
            "Укажите сумму в рублях, например 1500 или 1500,50.")),
    }
}

/// Reads a receipt JSON file.
pub fn read_receipt(path: &std::path::Path) -> Result<Receipt, CliError> {
    let meta = std::fs::metadata(path).map_err(|e| {
        CliError::new("cli.file_unreadable", format!("Не удалось открыть {}: {e}", path.display()), format!("Cannot open {}: {e}", path.display()), "")
    })?;
    if meta.len() > 1 << 20 {
        return Err(CliError::new("cli.file_too_large", "Файл чека больше 1 МБ", "The receipt file is over 1 MiB", ""));
    }
    let text = std::fs::read(path).map_err(|e| {
        CliError::new("cli.file_unreadable", format!("Не удалось прочитать {}: {e}", path.display()), format!("Cannot read {}: {e}", path.display()), "")
    })?;
    serde_json::from_slice(&text).map_err(|e| {
        CliError::new("receipt.json_invalid", format!("Неверный JSON чека: {e}"), format!("Invalid receipt JSON: {e}"),
            "Сверьте файл с примером tests/fixtures/receipt-sale.json (суммы в копейках).")
    })
}

pub fn parse_protocol(text: Option<&str>) -> Result<Option<crate::devices::Protocol>, CliError> {
    match text {
        None => Ok(None),
        Some(t) => crate::devices::Protocol::parse(t).map(Some).ok_or_else(|| {
            CliError::new("cli.protocol_invalid", format!("Неизвестный протокол {t:?}"), format!("Unknown protocol {t:?}"),
                "Укажите --protocol shtrih, atol, atol-v2 или umka.")
        }),
    }
}

/// The per-OS data directory (queue, token, logs, emulator state).
pub fn default_data_dir() -> PathBuf {
    // Under systemd with StateDirectory=, the unit says where state lives.
    if let Some(dir) = systemd_dir("STATE_DIRECTORY") {
        return dir;
    }
    // Under the Windows service manager: %ProgramData%\kkm-agent\data.
    #[cfg(windows)]
    if let Some(dir) = crate::windows_service::service_data_dir() {
        return dir;
    }
    directories::ProjectDirs::from("ru", "kkm", "kkm-agent")
        .map(|d| d.data_local_dir().to_path_buf())
        .unwrap_or_else(|| PathBuf::from(".kkm-agent"))
}

/// The first directory of a systemd `*_DIRECTORY` variable (colon-separated).
pub fn systemd_dir(var: &str) -> Option<PathBuf> {
    let v = std::env::var_os(var)?;
    let first = v.to_str()?.split(':').next()?.trim().to_string();
    (!first.is_empty()).then(|| PathBuf::from(first))
}

fn load_config(path: Option<PathBuf>) -> Result<crate::config::Config, CliError> {
    let path = path.unwrap_or_else(crate::config::Config::default_path);
    crate::config::Config::load(&path).map_err(|e| {
        CliError::new(e.code, e.ru, e.en, format!("Пример настроек: service/config.example.toml; путь: {}", path.display()))
    })
}

/// How many daily log files are kept.
pub const LOG_FILES_KEPT: usize = 14;

/// Logs to stderr and to a daily-rotated file in the data dir.
pub fn init_logging(data_dir: &std::path::Path) -> Option<tracing_appender::non_blocking::WorkerGuard> {
    use std::io::IsTerminal;
    use tracing_subscriber::prelude::*;
    let filter = || tracing_subscriber::EnvFilter::try_from_env("KKM_LOG").unwrap_or_else(|_| "info".into());
    let logs = data_dir.join("logs");
    // Daily files, the last 14 kept.
    let file = std::fs::create_dir_all(&logs).ok().and_then(|_| {
        tracing_appender::rolling::RollingFileAppender::builder()
            .rotation(tracing_appender::rolling::Rotation::DAILY)
            .filename_prefix("kkm-agent")
            .filename_suffix("log")
            .max_log_files(LOG_FILES_KEPT)
            .build(&logs)
            .ok()
    });
    let (writer, guard) = match file {
        Some(f) => {
            // The default queue (128 000 lines) is a 4 MB array touched at start: a third of
            // the idle agent's memory. 8 192 lines absorb any burst this agent logs; beyond
            // that, lines are dropped rather than the receipt path blocked on the disk.
            let (w, g) = tracing_appender::non_blocking::NonBlockingBuilder::default().buffered_lines_limit(LOG_LINES_QUEUED).finish(f);
            (Some(w), Some(g))
        }
        None => (None, None),
    };
    let _ = tracing_subscriber::registry()
        // Colour only for a person at a terminal: the journal and files get plain text.
        .with(tracing_subscriber::fmt::layer().with_ansi(std::io::stderr().is_terminal()).with_writer(std::io::stderr).with_filter(filter()))
        .with(writer.map(|w| tracing_subscriber::fmt::layer().with_ansi(false).with_writer(w).with_filter(filter())))
        .try_init();
    guard
}

/// Log lines waiting for the file writer thread at most.
const LOG_LINES_QUEUED: usize = 8192;
