//! Protocol and speed detection against both emulators, over a pseudo-terminal that
//! hears only one line speed, and over TCP. Also: a port with nothing on it ends with a
//! clear answer in bounded time.

use kkm_agent::diagnostics::detect;
use kkm_agent::emulate::{self, EmulatedModel, EmulatorOptions};
use kkm_core::port::PortSpec;
use kkm_core::ProtocolFamily;
use kkm_emu::Listen;
use std::time::{Duration, Instant};

async fn emulator(model: EmulatedModel, listen: Listen, baud: Option<u32>) -> emulate::RunningEmulator {
    emulate::start(EmulatorOptions { baud, ..EmulatorOptions::new(model, listen) })
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
