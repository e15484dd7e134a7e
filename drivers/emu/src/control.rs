//! The control channel: a line protocol for tests and engineers to change the world
//! around an emulated register (paper, clock, ОФД, faults) while it runs.
//!
//! Each request is one line; each answer is one line: `ok`, `error: …`, or JSON for
//! `state`. The same [`apply`] serves the TCP control port and `--fault` flags.
//!
//! | line | effect |
//! |---|---|
//! | `paper out` / `paper in` | take the paper out, put it back |
//! | `clock +25h` / `clock -10m` / `clock +31d` / `clock reset` | move the device clock |
//! | `ofd offline` / `ofd online` | the ОФД stops or resumes acknowledging documents |
//! | `serial lost` / `serial ok` | the unit reports an all-zero factory number |
//! | `keypad receipt OP SUM PAY` | a receipt punched on the unit's keypad, e.g. `keypad receipt sale 1500,00 cash` (OP: `sale`, `sale_return`, `purchase`, `purchase_return`; PAY: `cash`, `electronic`, …) |
//! | `keypad cash-in SUM` / `keypad cash-out SUM` | a cash move made on the keypad |
//! | `keypad cancel` | the cashier cancels the open receipt on the keypad |
//! | `ofd unsent-for 31d` | the ОФД is offline and the oldest unsent document is that old (the ФН blocks after 30 days) |
//! | `fn replace SERIAL` | an engineer swaps the ФН: a new serial and a new archive |
//! | `fn expire` | the ФН's life ended yesterday: it refuses new documents |
//! | `rnm NNNNNNNNNNNNNNNN` | write another 16-digit РНМ (e.g. one whose check digits do not match) |
//! | `ffd 1.05` | re-register with another ФФД version (1.0, 1.05, 1.1, 1.2) |
//! | `tax-systems osn,usn-income` | re-register with other tax systems (`osn`, `usn-income`, `usn-income-outcome`, `envd`, `esn`, `patent`) |
//! | `ofd address HOST:PORT` | the ОФД server in the unit's settings (Shtrih table 19) |
//! | `fault SPEC` | inject a fault (see [`crate::faults`]) |
//! | `faults clear` | drop all pending faults |
//! | `state` | the whole state as one JSON line |

use crate::{Emulator, FaultSpec};
use std::sync::Arc;
use time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// Applies one control line; returns the answer line.
pub fn apply(emu: &Emulator, line: &str) -> String {
    match run(emu, line.trim()) {
        Ok(answer) => answer,
        Err(e) => format!("error: {e}"),
    }
}

fn parse_offset(text: &str) -> Result<Duration, String> {
    let (sign, rest) = match text.as_bytes().first() {
        Some(b'+') => (1, &text[1..]),
        Some(b'-') => (-1, &text[1..]),
        _ => return Err(format!("{text:?}: expected +N or -N with a unit s, m, h or d")),
    };
    let unit_at = rest.find(|c: char| !c.is_ascii_digit()).ok_or("missing unit (s, m, h, d)")?;
    let n: i64 = rest[..unit_at].parse().map_err(|_| format!("{text:?}: bad number"))?;
    let d = match &rest[unit_at..] {
        "s" => Duration::seconds(n),
        "m" => Duration::minutes(n),
        "h" => Duration::hours(n),
        "d" => Duration::days(n.min(100_000)),
        u => return Err(format!("unknown unit {u:?}")),
    };
    Ok(d * sign)
}

/// A word as one of the core's serde enums (`sale`, `cash`, …).
fn word<T: serde::de::DeserializeOwned>(w: &str, what: &str) -> Result<T, String> {
    serde_json::from_value(serde_json::Value::String(w.to_string())).map_err(|_| format!("unknown {what} {w:?}"))
}

fn keypad(emu: &Emulator, words: &[&str]) -> Result<String, String> {
    let sum = |w: Option<&&str>| kkm_core::Money::parse_roubles(w.copied().unwrap_or("")).map_err(|e| format!("sum: {e}"));
    let mut core = emu.core();
    match words.first().copied() {
        Some("receipt") => {
            let op = word(words.get(1).copied().unwrap_or(""), "operation")?;
            let total = sum(words.get(2))?;
            let pay = word(words.get(3).copied().unwrap_or("cash"), "payment type")?;
            let doc = core.keypad_receipt(op, total, pay).map_err(|e| e.to_string())?;
            Ok(format!("ok {}", doc.number))
        }
        Some("cash-in") => core.cash_in(sum(words.get(1))?).map(|_| "ok".into()).map_err(|e| e.to_string()),
        Some("cash-out") => core.cash_out(sum(words.get(1))?).map(|_| "ok".into()).map_err(|e| e.to_string()),
        Some("cancel") => core.cancel_receipt().map(|_| "ok".into()).map_err(|e| e.to_string()),
        _ => Err("keypad: expected `receipt OP SUM PAY`, `cash-in SUM`, `cash-out SUM` or `cancel`".into()),
    }
}

fn run(emu: &Emulator, line: &str) -> Result<String, String> {
    let mut words = line.split_whitespace();
    let (cmd, arg) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    if cmd == "keypad" {
        let all: Vec<&str> = line.split_whitespace().skip(1).collect();
        return keypad(emu, &all);
    }
    match (cmd, arg) {
        ("paper", "out") => emu.core().set_paper(false),
        ("paper", "in") => emu.core().set_paper(true),
        ("clock", "reset") => emu.core().reset_clock(),
        ("clock", off) => emu.core().shift_clock(parse_offset(off)?),
        ("ofd", "offline") => emu.core().set_ofd_online(false),
        ("ofd", "online") => emu.core().set_ofd_online(true),
        ("ofd", "unsent-for") => emu.core().set_ofd_unsent_for(parse_offset(&format!("+{}", words.next().unwrap_or("")))?),
        ("fn", "replace") => {
            let serial = words.next().filter(|s| s.len() == 16 && s.chars().all(|c| c.is_ascii_digit()));
            emu.core().replace_fn(serial.ok_or("fn replace: expected a 16-digit ФН serial")?)
        }
        ("fn", "expire") => emu.core().expire_fn(),
        ("rnm", rnm) => {
            if rnm.len() != 16 || !rnm.chars().all(|c| c.is_ascii_digit()) {
                return Err("rnm: expected 16 digits".into());
            }
            emu.core().set_rnm(rnm)
        }
        ("ofd", "address") => {
            let addr = words.next().unwrap_or("");
            let (host, port) = addr.rsplit_once(':').ok_or("ofd address: expected HOST:PORT")?;
            let port: u16 = port.parse().map_err(|_| format!("ofd address: bad port {port:?}"))?;
            if host.is_empty() || host.len() > 64 {
                return Err("ofd address: the host must be 1 to 64 characters (table 19, field 1)".into());
            }
            emu.core().set_ofd_address(host, port)
        }
        ("ffd", v) => {
            let v = kkm_core::FfdVersion::parse(v).ok_or("ffd: expected 1.0, 1.05, 1.1 or 1.2")?;
            emu.core().set_ffd(v.code())
        }
        ("tax-systems", list) => {
            let mask = kkm_core::TaxSystems::parse_list(list)
                .filter(|m| m.0 != 0)
                .ok_or("tax-systems: expected a list like osn,usn-income (osn, usn-income, usn-income-outcome, envd, esn, patent)")?;
            emu.core().set_tax_systems(mask.0)
        }
        ("serial", "lost") => emu.core().set_serial_lost(true),
        ("serial", "ok") => emu.core().set_serial_lost(false),
        ("fault", spec) => emu.faults().inject(FaultSpec::parse(spec)?),
        ("faults", "clear") => {
            emu.faults().clear();
            emu.core().disarm_paper_faults();
        }
        ("state", _) => return Ok(emu.core().snapshot().to_string()),
        _ => return Err(format!("unknown control command {line:?}")),
    }
    Ok("ok".into())
}

/// Serves the control channel on a TCP listener until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, emu: Arc<Emulator>) {
    loop {
        let Ok((sock, _)) = listener.accept().await else { continue };
        let emu = emu.clone();
        tokio::spawn(async move {
            let (r, mut w) = sock.into_split();
            let mut lines = BufReader::new(r.take(1 << 20)).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let mut answer = apply(&emu, &line);
                answer.push('\n');
                if w.write_all(answer.as_bytes()).await.is_err() {
                    break;
                }
            }
        });
    }
}

use tokio::io::AsyncReadExt as _;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EmuIdentity, FiscalCore};

    #[test]
    fn control_lines() {
        let emu = Emulator::new(FiscalCore::open(None, EmuIdentity::new("X", "1", "2")).unwrap());
        assert_eq!(apply(&emu, "paper out"), "ok");
        assert!(!emu.core().paper_present());
        assert_eq!(apply(&emu, "clock +25h"), "ok");
        assert!(apply(&emu, "clock 25h").starts_with("error"));
        assert!(apply(&emu, "fault bogus").starts_with("error"));
        assert_eq!(apply(&emu, "fault lose-answer@receipt-close"), "ok");
        assert!(apply(&emu, "state").starts_with('{'));
        assert!(apply(&emu, "dance").starts_with("error"));
        // The keypad needs an open shift, like the real unit.
        assert_eq!(apply(&emu, "paper in"), "ok");
        assert_eq!(apply(&emu, "clock reset"), "ok");
        assert!(apply(&emu, "keypad receipt sale 1500,00 cash").starts_with("error"));
        emu.core().open_shift().unwrap();
        assert_eq!(apply(&emu, "keypad receipt sale 1500,00 cash"), "ok 3");
        assert_eq!(apply(&emu, "keypad cash-in 200"), "ok");
        assert_eq!(emu.core().registers().cash_ins, kkm_core::Money(20_000));
        assert!(apply(&emu, "keypad receipt sell 1 cash").starts_with("error"));
        assert_eq!(apply(&emu, "ofd address ofd.example.ru:7777"), "ok");
        assert_eq!(emu.core().ofd_address(), ("ofd.example.ru", 7777));
        assert!(apply(&emu, "ofd address nowhere").starts_with("error"));
        assert_eq!(apply(&emu, "rnm 0000000001999999"), "ok");
        assert!(apply(&emu, "rnm 12").starts_with("error"));
        assert_eq!(apply(&emu, "fn expire"), "ok");
        assert_eq!(apply(&emu, "ffd 1.05"), "ok");
        assert_eq!(emu.core().identity().ffd_code, 2);
        assert!(apply(&emu, "ffd 2.0").starts_with("error"));
        assert_eq!(apply(&emu, "tax-systems osn,usn-income-outcome"), "ok");
        assert_eq!(emu.core().identity().tax_systems, 0x05);
        assert!(apply(&emu, "tax-systems usn").starts_with("error"));
        assert!(apply(&emu, "tax-systems").starts_with("error"));
    }
}
