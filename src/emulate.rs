//! Runs a register emulator: the shared fiscal core (`kkm-emu`) with a protocol
//! front-end (`kkm-shtrih` for Azur-01F; `kkm-umka`, the УМКА HTTP API, for Neva-01-F by
//! default, or `kkm-atol` with `--protocol atol`) on a pseudo-terminal or a TCP port,
//! plus an optional control port. An HTTP front-end listens on TCP only and is reached
//! at `http://IP:PORT`.
//!
//! The emulators are product code: `kkm-agent demo` runs on them and the end-to-end
//! tests drive them through the real wire protocol, in-process or as a separate
//! `kkm-agent emulate` process.

use kkm_emu::{control, listen, EmuIdentity, Emulator, FaultSpec, FiscalCore, Listen};
use std::path::PathBuf;
use std::sync::Arc;

/// The models we can emulate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EmulatedModel {
    #[value(name = "azur-01f")]
    Azur01F,
    #[value(name = "neva-01-f")]
    Neva01F,
}

impl EmulatedModel {
    pub fn key(self) -> &'static str {
        match self {
            EmulatedModel::Azur01F => "azur-01f",
            EmulatedModel::Neva01F => "neva-01-f",
        }
    }

    /// A consistent factory identity. The ЗН series: Shtrih-family units have 16 digits
    /// with leading zeros; Neva-01-F has 8 digits starting with 18.
    pub fn default_identity(self) -> EmuIdentity {
        match self {
            EmulatedModel::Azur01F => EmuIdentity::new("АЗУР-01Ф", "0000000045001234", "9960440300012345"),
            EmulatedModel::Neva01F => EmuIdentity::new("НЕВА-01-Ф", "18001234", "9960440300054321"),
        }
    }
}

/// The wire protocol an emulator speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EmuProtocol {
    Shtrih,
    #[value(name = "atol")]
    Atol,
    #[value(name = "atol-v2")]
    AtolV2,
    Umka,
}

impl EmuProtocol {
    pub fn name(self) -> &'static str {
        match self {
            EmuProtocol::Shtrih => "shtrih",
            EmuProtocol::Atol => "atol",
            EmuProtocol::AtolV2 => "atol-v2",
            EmuProtocol::Umka => "umka",
        }
    }
}

/// What to start.
#[derive(Debug, Clone)]
pub struct EmulatorOptions {
    pub model: EmulatedModel,
    pub listen: Listen,
    /// The ФН state file; `None` keeps it in memory.
    pub state: Option<PathBuf>,
    /// `IP:PORT` for the control channel.
    pub control: Option<std::net::SocketAddr>,
    pub faults: Vec<FaultSpec>,
    /// On a PTY, answer only a host at this line speed (as a real serial line would).
    pub baud: Option<u32>,
    /// Override the factory number (ЗН).
    pub serial: Option<String>,
    /// Report an all-zero factory number (слетел ЗН).
    pub serial_lost: bool,
    /// Print documents (the paper tape) to stdout.
    pub echo_tape: bool,
    /// Neva-01-F only: speak the older ATOL v2 link layer instead of v3.
    pub atol_v2: bool,
    /// The protocol; `None` is the model's default (Neva-01-F: УМКА, or ATOL v2 when
    /// `atol_v2` is set).
    pub protocol: Option<EmuProtocol>,
}

impl EmulatorOptions {
    /// A fresh unit with its factory identity, in-memory ФН, no faults, no tape.
    pub fn new(model: EmulatedModel, listen: Listen) -> EmulatorOptions {
        EmulatorOptions {
            model,
            listen,
            state: None,
            control: None,
            faults: Vec::new(),
            baud: None,
            serial: None,
            serial_lost: false,
            echo_tape: false,
            atol_v2: false,
            protocol: None,
        }
    }

    /// The protocol this emulator will speak.
    pub fn resolved_protocol(&self) -> Result<EmuProtocol, String> {
        match (self.model, self.protocol) {
            (EmulatedModel::Azur01F, None | Some(EmuProtocol::Shtrih)) => Ok(EmuProtocol::Shtrih),
            (EmulatedModel::Azur01F, Some(p)) => Err(format!("Azur-01F speaks shtrih only, not {}", p.name())),
            (EmulatedModel::Neva01F, Some(EmuProtocol::Shtrih)) => Err("Neva-01-F speaks umka or atol, not shtrih".into()),
            (EmulatedModel::Neva01F, Some(EmuProtocol::Atol)) if self.atol_v2 => Ok(EmuProtocol::AtolV2),
            (EmulatedModel::Neva01F, Some(p)) => Ok(p),
            (EmulatedModel::Neva01F, None) if self.atol_v2 => Ok(EmuProtocol::AtolV2),
            (EmulatedModel::Neva01F, None) => Ok(EmuProtocol::Umka),
        }
    }
}

/// A running emulator.
pub struct RunningEmulator {
    /// What a client opens: a PTY path or `tcp:IP:PORT`.
    pub port: String,
    pub control: Option<std::net::SocketAddr>,
    /// The ОФД server the unit is set to send to (a local stand-in, see [`ofd_stand_in`]).
    pub ofd: std::net::SocketAddr,
    pub emulator: Arc<Emulator>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for RunningEmulator {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

pub async fn start(opts: EmulatorOptions) -> std::io::Result<RunningEmulator> {
    let protocol = opts.resolved_protocol().map_err(std::io::Error::other)?;
    if protocol == EmuProtocol::Umka && opts.listen == Listen::Pty {
        return Err(std::io::Error::other("the УМКА API is HTTP: listen on tcp:IP:PORT (e.g. tcp:127.0.0.1:8088), not on a pty"));
    }
    let mut identity = opts.model.default_identity();
    if let Some(s) = &opts.serial {
        identity = EmuIdentity::new(&identity.model_name, s, &identity.fn_serial);
    }
    if let Some(dir) = opts.state.as_ref().and_then(|p| p.parent()) {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir)?;
        }
    }
    let mut core = FiscalCore::open(opts.state.as_deref(), identity)?;
    if opts.serial_lost {
        core.set_serial_lost(true);
    }
    if opts.echo_tape {
        core.set_print_sink(Box::new(|lines: &[String]| {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            for l in lines {
                let _ = writeln!(out, "  | {l}");
            }
            let _ = writeln!(out);
        }));
    }
    // ATOL has no "continue printing" command in our sources: the emulated unit
    // finishes an interrupted print by itself when paper is back (unconfirmed, see
    // protocol-specs/atol.md); Shtrih waits for B0.
    core.set_resume_on_paper_in(matches!(opts.model, EmulatedModel::Neva01F));
    let emulator = Emulator::new(core);
    for f in &opts.faults {
        emulator.faults().inject(*f);
    }
    let endpoint = match protocol {
        EmuProtocol::Shtrih => {
            listen::start(&opts.listen, opts.baud, emulator.clone(), Arc::new(kkm_shtrih::emulator::ShtrihEmulator::azur_01f()))
                .await?
        }
        EmuProtocol::Atol | EmuProtocol::AtolV2 => {
            let link = if protocol == EmuProtocol::AtolV2 {
                kkm_atol::driver::LinkVersion::V2
            } else {
                kkm_atol::driver::LinkVersion::V3
            };
            listen::start(&opts.listen, opts.baud, emulator.clone(), Arc::new(kkm_atol::emulator::AtolEmulator::neva_01_f().with_link(link)))
                .await?
        }
        EmuProtocol::Umka => {
            let mut e = listen::start(&opts.listen, None, emulator.clone(), Arc::new(kkm_umka::emulator::UmkaEmulator::neva_01_f())).await?;
            e.port = e.port.replacen("tcp:", "http://", 1);
            e
        }
    };
    let mut tasks = vec![endpoint.task];
    let mut control_addr = None;
    if let Some(addr) = opts.control {
        let l = tokio::net::TcpListener::bind(addr).await?;
        control_addr = Some(l.local_addr()?);
        tasks.push(tokio::spawn(control::serve(l, emulator.clone())));
    }
    let (ofd, ofd_task) = ofd_stand_in().await?;
    emulator.core().set_ofd_address(&ofd.ip().to_string(), ofd.port());
    tasks.push(ofd_task);
    Ok(RunningEmulator { port: endpoint.port, control: control_addr, ofd, emulator, tasks })
}

/// The ОФД server the emulated unit has in its settings: a local port that accepts
/// connections and closes them, so that diagnostics find a fresh emulator's ОФД
/// reachable. `ofd address HOST:PORT` on the control channel points elsewhere.
async fn ofd_stand_in() -> std::io::Result<(std::net::SocketAddr, tokio::task::JoinHandle<()>)> {
    let l = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = l.local_addr()?;
    let task = tokio::spawn(async move {
        loop {
            if let Ok((sock, _)) = l.accept().await {
                drop(sock);
            }
        }
    });
    Ok((addr, task))
}
