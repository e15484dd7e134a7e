//! Protocol and speed detection against both emulators, over a pseudo-terminal that
//! hears only one line speed, and over TCP; Neva-01-F also over the УМКА HTTP API, where
//! a refused login must read "wrong password", never "no device". Also: a port with
//! nothing on it ends with a clear answer in bounded time.

use kkm_agent::diagnostics::detect;
use kkm_agent::emulate::{self, EmuProtocol, EmulatedModel, EmulatorOptions};
use kkm_core::port::PortSpec;
use kkm_core::ProtocolFamily;
use kkm_emu::Listen;
use std::time::{Duration, Instant};

async fn emulator(model: EmulatedModel, listen: Listen, baud: Option<u32>) -> emulate::RunningEmulator {
    // Neva-01-F on a byte port: the ATOL profile.
    let protocol = (model == EmulatedModel::Neva01F).then_some(EmuProtocol::Atol);
    emulate::start(EmulatorOptions { baud, protocol, ..EmulatorOptions::new(model, listen) })
    .await
    .unwrap()
}

async fn check(model: EmulatedModel, listen: Listen, baud: Option<u32>, family: ProtocolFamily, key: &str) {
    let emu = emulator(model, listen, baud).await;
    let spec = PortSpec::parse(&emu.port).unwrap();
    let d = detect::detect(&spec, Duration::from_secs(60)).await.unwrap_or_else(|e| panic!("{model:?}: {e}"));
    assert_eq!(d.protocol, family);
    assert_eq!(d.profile, Some(key));
    if family == ProtocolFamily::Shtrih {
        // Model id 45 is shared; the name says which unit it is.
        assert_eq!((d.model_id, d.unit.as_str()), (45, "АЗУР-01Ф"));
    }
    assert_eq!(d.baud, baud.or(if spec.is_tcp() { None } else { Some(115_200) }));
}

#[tokio::test]
async fn azur_over_pty_at_9600() {
    check(EmulatedModel::Azur01F, Listen::Pty, Some(9600), ProtocolFamily::Shtrih, "azur-01f").await;
}

#[tokio::test]
async fn neva_over_pty_at_57600() {
    check(EmulatedModel::Neva01F, Listen::Pty, Some(57_600), ProtocolFamily::Atol, "neva-01-f").await;
}

#[tokio::test]
async fn neva_on_the_v2_link_over_pty() {
    let emu = emulate::start(EmulatorOptions { atol_v2: true, baud: Some(19_200), ..EmulatorOptions::new(EmulatedModel::Neva01F, Listen::Pty) })
        .await
        .unwrap();
    let d = detect::detect(&PortSpec::parse(&emu.port).unwrap(), Duration::from_secs(60)).await.unwrap();
    assert_eq!((d.protocol, d.link, d.baud, d.profile), (ProtocolFamily::Atol, "atol-v2", Some(19_200), Some("neva-01-f")));
}

#[tokio::test]
async fn azur_over_tcp() {
    check(EmulatedModel::Azur01F, Listen::Tcp("127.0.0.1:0".parse().unwrap()), None, ProtocolFamily::Shtrih, "azur-01f").await;
}

#[tokio::test]
async fn neva_over_tcp() {
    check(EmulatedModel::Neva01F, Listen::Tcp("127.0.0.1:0".parse().unwrap()), None, ProtocolFamily::Atol, "neva-01-f").await;
}

#[tokio::test]
async fn silent_port_gives_a_bounded_clear_answer() {
    // A pty with nobody behind it: every probe times out.
    let pty = kkm_core::platform::open_pty().unwrap();
    let spec = PortSpec::parse(&pty.slave_path).unwrap();
    let started = Instant::now();
    let err = detect::detect(&spec, Duration::from_secs(8)).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(err.code(), "link.no_answer");
    // Nothing listening on TCP: refused at once.
    let err = detect::detect(&PortSpec::parse("tcp:127.0.0.1:9").unwrap(), Duration::from_secs(8)).await.unwrap_err();
    assert!(err.code().starts_with("link."));
    drop(pty);
}

async fn umka() -> emulate::RunningEmulator {
    emulate::start(EmulatorOptions::new(EmulatedModel::Neva01F, Listen::Tcp("127.0.0.1:0".parse().unwrap()))).await.unwrap()
}

#[tokio::test]
async fn neva_umka_over_http() {
    let emu = umka().await;
    assert!(emu.port.starts_with("http://127.0.0.1:"), "{}", emu.port);
    let d = detect::detect(&PortSpec::parse(&emu.port).unwrap(), Duration::from_secs(20)).await.unwrap();
    assert_eq!((d.protocol, d.link, d.baud, d.profile), (ProtocolFamily::Umka, "umka-http", None, Some("neva-01-f")));
    assert_eq!(d.model_name, "НЕВА-01-Ф");
    assert_eq!(d.url.as_deref(), Some(emu.port.as_str()));
}

#[tokio::test]
async fn neva_umka_found_behind_a_tcp_port() {
    let emu = umka().await;
    let tcp = emu.port.replacen("http://", "tcp:", 1);
    let d = detect::detect(&PortSpec::parse(&tcp).unwrap(), Duration::from_secs(30)).await.unwrap();
    assert_eq!((d.protocol, d.profile), (ProtocolFamily::Umka, Some("neva-01-f")));
    assert_eq!(d.url.as_deref(), Some(emu.port.as_str()), "detect names the port to configure");
}

#[tokio::test]
async fn a_refused_login_is_a_wrong_password_not_no_device() {
    // A unit whose cashier 1 and administrator 99 no longer have their default passwords.
    let emu = kkm_emu::Emulator::new(
        kkm_emu::FiscalCore::open(None, EmulatedModel::Neva01F.default_identity()).unwrap(),
    );
    let front = std::sync::Arc::new(kkm_umka::emulator::UmkaEmulator::neva_01_f());
    front.set_password(1, "4711");
    front.set_password(99, "8080");
    let ep = kkm_emu::listen::start(&Listen::Tcp("127.0.0.1:0".parse().unwrap()), None, emu, front).await.unwrap();
    let spec = PortSpec::parse(&ep.port.replacen("tcp:", "http://", 1)).unwrap();
    let err = detect::detect(&spec, Duration::from_secs(20)).await.unwrap_err();
    assert_eq!(err.code(), "config.device_credentials", "{err}");
    assert!(!err.is_link(), "not a link problem: {err}");
    assert!(err.title_ru().contains("пароль"), "{}", err.title_ru());
    assert!(err.action_ru().contains("cashier_password"), "{}", err.action_ru());
    // The same through the driver, and the right password works.
    let access = kkm_agent::devices::Access { cashier: Some(1), cashier_password: Some("1".into()), ..Default::default() };
    let mut d = kkm_agent::devices::open_driver_with("neva-01-f", None, &spec, None, &access).unwrap();
    let err = d.status().await.unwrap_err();
    assert_eq!(err.code(), "config.device_credentials");
    let creds = kkm_umka::client::Credentials::new(1, Some("4711"));
    let found = detect::detect_with(&spec, Duration::from_secs(20), Some(&creds)).await.unwrap();
    assert_eq!(found.profile, Some("neva-01-f"));
    let access = kkm_agent::devices::Access { cashier: Some(1), cashier_password: Some("4711".into()), ..Default::default() };
    let mut d = kkm_agent::devices::open_driver_with("neva-01-f", None, &spec, None, &access).unwrap();
    d.status().await.expect("the right password");
}
