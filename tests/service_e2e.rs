//! The installed service as an engineer meets it (issue 9, items 13–15): systemd's
//! directories, private data files, `kkm-agent token` that never makes a second token,
//! logs without colour codes when not on a terminal, and the cashier-page link.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_kkm-agent");

struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A config with one device on a port nobody listens on: the daemon starts anyway.
fn config(dir: &std::path::Path, data_dir: Option<&std::path::Path>) -> std::path::PathBuf {
    let path = dir.join("config.toml");
    let data = data_dir.map(|d| format!("data_dir = {:?}\n", d)).unwrap_or_default();
    std::fs::write(
        &path,
        format!("listen = \"127.0.0.1:0\"\n{data}[[devices]]\nid = \"k1\"\nmodel = \"azur-01f\"\nport = \"tcp:127.0.0.1:9\"\n"),
    )
    .unwrap();
    path
}

/// Starts `serve` and returns it with the lines it printed once the page link is out.
fn serve(cmd: &mut Command) -> (Agent, Vec<String>) {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut lines = Vec::new();
    let started = Instant::now();
    while !lines.iter().any(|l: &String| l.contains("#token=")) {
        assert!(started.elapsed() < Duration::from_secs(20), "serve printed no page link: {lines:?}");
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
            lines.push(l);
        }
    }
    (Agent(child), lines)
}

#[test]
fn state_directory_is_honoured_and_files_are_private() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    let cfg = config(dir.path(), None);
    let (agent, lines) = serve(Command::new(BIN).arg("serve").arg("--config").arg(&cfg).env("STATE_DIRECTORY", &state));
    // The page link carries the daemon's own token.
    let token = std::fs::read_to_string(state.join("token")).expect("the token is in $STATE_DIRECTORY");
    assert!(lines.iter().any(|l| l.ends_with(&format!("#token={}", token.trim()))), "{lines:?}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&state), 0o700);
        for f in ["queue.sqlite", "token", "agent.lock"] {
            assert_eq!(mode(&state.join(f)), 0o600, "{f}");
        }
        assert_eq!(mode(&state.join("logs")), 0o700);
    }
    drop(agent);
}

#[test]
fn an_old_world_readable_queue_is_made_private() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("token"), "a".repeat(64)).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(data.join("token"), std::fs::Permissions::from_mode(0o644)).unwrap();
        let cfg = config(dir.path(), Some(&data));
        let (agent, _) = serve(Command::new(BIN).arg("serve").arg("--config").arg(&cfg));
        let mode = std::fs::metadata(data.join("token")).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        drop(agent);
    }
}

#[test]
fn token_reads_the_daemons_token_and_never_makes_one() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cfg = config(dir.path(), Some(&data));
    let out = Command::new(BIN).arg("token").arg("--config").arg(&cfg).output().unwrap();
    assert!(!out.status.success());
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("daemon.token_missing"), "{text}");
    assert!(!data.join("token").exists(), "token made a token the daemon would not know");
    let (agent, _) = serve(Command::new(BIN).arg("serve").arg("--config").arg(&cfg));
    let out = Command::new(BIN).arg("token").arg("--config").arg(&cfg).output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), std::fs::read_to_string(data.join("token")).unwrap().trim());
    drop(agent);
}

#[test]
fn logs_to_a_pipe_have_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), Some(&dir.path().join("data")));
    let mut child = Command::new(BIN)
        .arg("serve")
        .arg("--config")
        .arg(&cfg)
        .env("KKM_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let _ = child.kill();
    let _ = child.wait();
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(err.contains("listening"), "{err}");
    assert!(!err.contains('\u{1b}'), "ANSI escape codes in piped logs: {err:?}");
}
