//! `kkm-agent decode` end to end: the binary on capture files with both directions
//! (`tests/fixtures/decode/`), on hex from the command line, and on bad input.
//!
//! Fixtures:
//! * `shtrih-session.txt`: our plain form; the vendor's frames from the spec vectors, a
//!   "no paper" answer first with a corrupted LRC and then resent, noise, a torn frame.
//! * `atol-v3-socat.log`: socat 1.7.4's own `-x -v` output of an ATOL v3 exchange
//!   (ADD A4 30 and its answer, ACK, ADD 59 answered with error 9A, once with a bad
//!   CRC-8 followed by two stray bytes, then again).
//! * `shtrih-portmon.log`: Portmon rows with Show Hex (the answer read in pieces).
//! * `shtrih-interceptty.txt`: one byte a line in the shape interceptty's `dumpbuff`
//!   prints (control bytes named as its `char_repr` names them).

mod common;

use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_kkm-agent");

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/decode/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn decode(args: &[&str]) -> Output {
    Command::new(BIN).arg("decode").args(args).output().expect("kkm-agent runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The head line of frame `n` (`#n …`) and its detail lines.
fn frame(text: &str, n: usize) -> String {
    let head = format!("#{n} ");
    let mut lines = text.lines().skip_while(|l| !l.starts_with(&head));
    let mut out = lines.next().unwrap_or_else(|| panic!("no frame {n} in:\n{text}")).to_string();
    for l in lines.take_while(|l| l.starts_with("    ")) {
        out.push('\n');
        out.push_str(l);
    }
    out
}

#[test]
fn a_shtrih_capture_with_both_directions_a_bad_lrc_and_garbage() {
    let o = decode(&["--protocol", "shtrih", "--file", &fixture("shtrih-session.txt")]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let t = stdout(&o);
    assert!(frame(&t, 1).starts_with("#1 > ПК→ККТ (PC→device) (строка 5 / line 5): ENQ"), "{t}");
    assert!(frame(&t, 2).contains("NAK: ККТ свободна"), "{t}");
    let status = frame(&t, 3);
    assert!(status.contains("запрос 10h «короткий запрос состояния»"), "{status}");
    assert!(status.contains("LRC: 0B верна / OK"), "{status}");
    assert!(status.contains("пароль / password: 30"), "{status}");
    let answer = frame(&t, 5);
    assert!(answer.starts_with("#5 < ККТ→ПК (device→PC)"), "{answer}");
    assert!(answer.contains("режим / mode: 02 смена открыта"), "{answer}");
    let fn_status = frame(&t, 11);
    assert!(fn_status.contains("номер ФН / FN number: 9287440301120991"), "{fn_status}");
    assert!(fn_status.contains("последний ФД / last document: 425"), "{fn_status}");
    assert!(fn_status.contains("дата и время ФН / FN date-time: 2021-07-29 11:29"), "{fn_status}");
    let sale = frame(&t, 15);
    assert!(sale.contains("FF46h") && sale.contains("цена / price: 100,00 руб. (10000 коп.)"), "{sale}");
    let bad = frame(&t, 17);
    assert!(bad.contains("(строка 21 / line 21)"), "{bad}");
    assert!(bad.contains("LRC: D2 НЕВЕРНА, ожидалась D1 / BAD, expected D1"), "{bad}");
    assert!(bad.contains("ошибка / error 6Bh [device.paper_out]: Нет чековой ленты / Out of receipt paper"), "{bad}");
    assert!(frame(&t, 18).contains("NAK: ПК не принял ответ"), "{t}");
    assert!(frame(&t, 20).contains("у ККТ есть ответ на прежнюю команду"), "{t}");
    assert!(frame(&t, 21).contains("LRC: D1 верна / OK"), "{t}");
    let garbage = frame(&t, 23);
    assert!(garbage.contains("мусор, не кадр (garbage, not a frame)") && garbage.contains("41 54 0D"), "{garbage}");
    assert!(frame(&t, 24).contains("кадр оборван (truncated frame)"), "{t}");
    assert!(t.contains("Итого / total: кадров 24 (frames), с неверной контрольной суммой 1 (bad checksum), оборванных 1 (truncated), мусор 1 (garbage), ошибок ККТ 2 (device errors)"), "{t}");
}

#[test]
fn an_atol_v3_capture_recorded_with_socat() {
    let o = decode(&["--protocol", "atol", "--file", &fixture("atol-v3-socat.log")]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let t = stdout(&o);
    let add = frame(&t, 1);
    assert!(add.starts_with("#1 > ПК→ККТ"), "{add}");
    assert!(add.contains("ADD") && add.contains("A4h «запрос к ФН» (FN request) 30h «статус ФН»"), "{add}");
    assert!(add.contains("CRC-8: C6 верна / OK"), "{add}");
    let result = frame(&t, 2);
    assert!(result.starts_with("#2 < ККТ→ПК (device→PC) (строка 4 / line 4)"), "{result}");
    assert!(result.contains("номер ФН / FN number: 9960440300054321"), "{result}");
    assert!(result.contains("последний ФД / last document: 298"), "{result}");
    let bad = frame(&t, 6);
    assert!(bad.contains("ответ на 59h «аннулировать чек»"), "{bad}");
    assert!(bad.contains("CRC-8: EF НЕВЕРНА, ожидалась FF / BAD, expected FF"), "{bad}");
    assert!(bad.contains("[device.receipt_closed]: Чек закрыт — операция невозможна / Receipt is closed"), "{bad}");
    assert!(frame(&t, 7).contains("мусор, не кадр"), "{t}");
    assert!(frame(&t, 8).contains("(строка 21 / line 21)") && frame(&t, 8).contains("CRC-8: FF верна / OK"), "{t}");
}

/// interceptty marks the register's bytes `>`: the program's ENQ is `<` there.
#[test]
fn an_interceptty_log_with_its_own_directions() {
    let o = decode(&["--protocol", "shtrih", "--file", &fixture("shtrih-interceptty.txt")]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let t = stdout(&o);
    assert!(frame(&t, 1).starts_with("#1 > ПК→ККТ (PC→device) (строка 1 / line 1): ENQ"), "{t}");
    assert!(frame(&t, 3).contains("запрос FCh") && frame(&t, 3).contains("LRC: FD верна"), "{t}");
    let answer = frame(&t, 5);
    assert!(answer.starts_with("#5 < ККТ→ПК (device→PC) (строка 8 / line 8)"), "{answer}");
    assert!(answer.contains("[device.unsupported]"), "{answer}");
}

#[test]
fn swap_turns_the_directions_round() {
    let o = decode(&["--protocol", "atol", "--swap", "--file", &fixture("atol-v3-socat.log")]);
    assert_eq!(o.status.code(), Some(0));
    let t = stdout(&o);
    assert!(frame(&t, 1).starts_with("#1 < ККТ→ПК (device→PC)"), "{t}");
}

#[test]
fn a_portmon_log_read_in_pieces() {
    let o = decode(&["--protocol", "shtrih", "--file", &fixture("shtrih-portmon.log")]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let t = stdout(&o);
    assert!(frame(&t, 3).contains("запрос FCh «получить тип устройства»"), "{t}");
    let answer = frame(&t, 5);
    assert!(answer.contains("(строка 7 / line 7)") && answer.contains("02 02 FC 37 C9"), "{answer}");
    assert!(answer.contains("[device.unsupported]"), "{answer}");
}

#[test]
fn hex_on_the_command_line_and_json() {
    let o = decode(&["--protocol", "shtrih", "02 05 10 1E 00 00 00 0B"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("#1 > ПК→ККТ (PC→device) [угадано / guessed]: запрос 10h"), "{}", stdout(&o));
    let o = decode(&["--protocol", "atol-v2", "--from", "pc", "--json", "02", "00", "00", "A5", "03", "A6"]);
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(v["protocol"], "atol-v2");
    assert_eq!(v["frames"][0]["direction"], "to_device");
    assert_eq!(v["frames"][0]["checksum"]["verdict"], "good");
    assert_eq!(v["frames"][0]["raw"], "02 00 00 A5 03 A6");
    assert_eq!(v["summary"]["frames"], 1);
}

#[test]
fn bad_hex_exits_2_with_a_stable_code() {
    for (args, code) in [
        (vec!["--protocol", "shtrih", "02 0"], "decode.hex_odd_length"),
        (vec!["--protocol", "shtrih", "02 GG"], "decode.hex_invalid"),
        (vec!["--protocol", "shtrih", "--from", "sideways", "02"], "cli.direction_invalid"),
        (vec!["--protocol", "klingon", "02"], "cli.protocol_invalid"),
        (vec!["--protocol", "shtrih", "--file", "/nonexistent/capture.txt"], "decode.file_unreadable"),
    ] {
        let o = decode(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(&format!("Ошибка [{code}]")), "{args:?}: {err}");
        assert!(err.contains("Что делать:"), "{err}");
    }
    let o = decode(&["--protocol", "shtrih", "--json", "0x0"]);
    assert_eq!(o.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON error");
    assert_eq!(v["error"]["code"], "decode.hex_odd_length");
}

#[test]
fn an_unreadable_capture_line_is_named() {
    let dir = std::env::temp_dir().join(format!("kkm-decode-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.txt");
    std::fs::write(&path, "> 05\n< 15\nthis is not a capture\n").unwrap();
    let o = decode(&["--protocol", "shtrih", "--file", path.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("Ошибка [decode.capture_line_unreadable]: строка 3:"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn help_names_the_capture_forms() {
    let o = Command::new(BIN).args(["decode", "--help"]).output().expect("kkm-agent runs");
    let t = stdout(&o);
    assert_eq!(o.status.code(), Some(0));
    for needle in ["socat -x", "Portmon", "Show Hex", "`> 02 05", "--from", "decode.hex_odd_length"] {
        assert!(t.contains(needle), "{needle} missing from:\n{t}");
    }
}

/// Kills the emulator this test started when the test ends, however it ends.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `kkm-agent emulate` on a TCP port and returns it with its address.
fn emulator(args: &[&str]) -> (Child, String) {
    use std::io::BufRead;
    let mut child = Command::new(BIN)
        .args(["emulate", "--listen", "tcp:127.0.0.1:0", "--quiet", "--ephemeral"])
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("emulator starts");
    let stdout = child.stdout.take().unwrap();
    let child = Child(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(p) = line.strip_prefix("port: ") {
                let _ = tx.send(p.trim().to_string());
            }
        }
    });
    let port = rx.recv_timeout(std::time::Duration::from_secs(30)).expect("the emulator prints its port");
    (child, port)
}

/// The agent's own traffic with an emulator (status, info, a shift with a receipt, a
/// cash-in, the Z-report), sniffed and decoded: every frame is whole, every checksum
/// right, every command and answer named and its fields read to the end.
fn decode_the_agents_own_traffic(emulate: &[&str], device: &[&str], protocol: &str, receipt_command: &str) {
    let (_emu, port) = emulator(emulate);
    let (relay, log) = common::relay::sniffing_relay(&port);
    let dir = std::env::temp_dir().join(format!("kkm-decode-own-{protocol}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // The sample receipt at 10 % (ATOL has no confirmed code for 22 %).
    let mut receipt: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(format!("{}/tests/fixtures/receipt-sale.json", env!("CARGO_MANIFEST_DIR"))).unwrap()).unwrap();
    for item in receipt["items"].as_array_mut().unwrap() {
        item["vat"] = "vat10".into();
    }
    let receipt_path = dir.join("receipt.json");
    std::fs::write(&receipt_path, receipt.to_string()).unwrap();
    let actions: [&[&str]; 6] = [&["status"], &["info"], &["open-shift"], &["receipt", receipt_path.to_str().unwrap()], &["cash-in", "100"], &["z-report"]];
    for action in actions {
        let o = Command::new(BIN).args(["device", "--port", &relay]).args(device).args(action).output().unwrap();
        assert!(o.status.success(), "device {action:?}: {}", String::from_utf8_lossy(&o.stderr));
    }
    std::thread::sleep(std::time::Duration::from_millis(300)); // the last ACKs
    let path = dir.join("capture.txt");
    std::fs::write(&path, log.lock().unwrap().join("\n")).unwrap();
    let o = decode(&["--protocol", protocol, "--json", "--file", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let s = &v["summary"];
    assert!(s["frames"].as_u64().unwrap() > 6, "{v}");
    for key in ["bad_checksum", "truncated", "garbage"] {
        assert_eq!(s[key], 0, "{key} in the agent's own traffic: {v:#}");
    }
    let titles: Vec<&str> = v["frames"].as_array().unwrap().iter().map(|f| f["title"].as_str().unwrap()).collect();
    assert!(titles.iter().any(|t| t.contains(receipt_command)), "no {receipt_command} in {titles:#?}");
    // The cashier's name (tag 1021) is read back as text from its code page.
    let text = o.stdout.clone();
    let text = String::from_utf8_lossy(&text);
    assert!(text.contains("«Иванова А. С.»"), "no cashier name in the decoded receipt");
    for f in v["frames"].as_array().unwrap() {
        let title = f["title"].as_str().unwrap();
        // Every byte of every frame is read into a named field.
        assert!(!f["fields"].as_array().unwrap().iter().any(|x| x["name_en"] == "other bytes"), "{f:#}");
        assert!(!title.contains("unknown command") && !title.contains("not in the capture"), "{f:#}");
        assert_eq!(f["direction_guessed"], false);
        for note in f["notes"].as_array().unwrap() {
            assert!(!note.as_str().unwrap().contains("cut short") && !note.as_str().unwrap().contains("not read"), "{f:#}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_agents_own_shtrih_traffic_decodes_cleanly() {
    decode_the_agents_own_traffic(&["--model", "azur-01f"], &["--model", "azur-01f"], "shtrih", "FF46h");
}

#[test]
fn the_agents_own_atol_v3_traffic_decodes_cleanly() {
    decode_the_agents_own_traffic(&["--model", "neva-01-f", "--protocol", "atol"], &["--model", "neva-01-f", "--protocol", "atol"], "atol", "EBh");
}

#[test]
fn the_agents_own_atol_v2_traffic_decodes_cleanly() {
    decode_the_agents_own_traffic(&["--model", "neva-01-f", "--protocol", "atol-v2"], &["--model", "neva-01-f", "--protocol", "atol-v2"], "atol-v2", "EBh");
}
