//! `kkm-agent decode`: a sniffed COM-port capture, or hex from the command line, turned
//! into meaning: each frame with its direction, command, fields, checksum verdict and
//! the device's error explained in Russian and English.
//!
//! Thin on purpose: reading the capture is `kkm_core::capture_text`, the protocols are
//! `kkm_shtrih::decode` and `kkm_atol::decode`. Bad input (odd or non-hex digits, an
//! unreadable line, a missing file) is a coded error and exit code 2; frames that are
//! broken on the wire are not errors of the command: they are what it is there to show.

use kkm_core::capture::{Checksum, Chunk, DecodedFrame, Direction, FrameKind};
use kkm_core::capture_text::{self, CaptureError};
use serde::Serialize;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

pub const ABOUT: &str = "Explain captured port traffic / расшифровать запись обмена с ККТ";

pub const LONG_ABOUT: &str = "\
Explain captured port traffic: every frame with its direction, the command, the decoded \
fields, the checksum verdict (Shtrih LRC, ATOL v3 CRC-8, ATOL v2 XOR) and the device's \
error in Russian and English. Broken frames, bad checksums and garbage are shown as such.

Input: hex bytes on the command line (`kkm-agent decode --protocol shtrih 02 05 10 1E 00 00 00 0B`, \
direction guessed unless --from is given), or --file with a capture:
  * plain lines `> 02 05 …` (computer → register), `< 06` (register → computer), bare hex \
(direction unknown); `#` starts a comment;
  * socat -x or socat -x -v output (`>`: data from socat's first address to its second; \
put the cash program's side first (or pass --swap), e.g. `socat -x -v PTY,link=/tmp/kkm,raw FILE:/dev/ttyUSB0,raw,b115200`);
  * interceptty output (`> 0x06 (…)`, one byte a line; there `>` is register → computer);
  * a Portmon (Sysinternals) log saved with Options → Show Hex on (IRP_MJ_WRITE is \
computer → register, IRP_MJ_READ register → computer).

Bad input exits with code 2 and a stable error code (decode.hex_invalid, \
decode.hex_odd_length, decode.capture_line_unreadable, decode.capture_length_mismatch, \
decode.capture_empty, decode.file_unreadable, cli.protocol_invalid, cli.direction_invalid).";

#[derive(clap::Args, Debug)]
pub struct DecodeArgs {
    /// `shtrih`, `atol` (v3 link layer) or `atol-v2`. УМКА speaks HTTP/JSON: read it as it is.
    #[arg(long)]
    pub protocol: String,
    /// A capture file (`-` for standard input).
    #[arg(long, conflicts_with = "hex")]
    pub file: Option<PathBuf>,
    /// Direction of the hex on the command line: `pc` (computer → register) or `device`.
    #[arg(long, requires = "hex")]
    pub from: Option<String>,
    /// The capture's `>` is register → computer (e.g. socat given the register's side
    /// first): swap the two directions.
    #[arg(long, requires = "file")]
    pub swap: bool,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
    /// Hex bytes, e.g. `02 05 10 1E 00 00 00 0B` or `020510...`.
    #[arg(required_unless_present = "file", allow_hyphen_values = true)]
    pub hex: Vec<String>,
}

#[derive(Clone, Copy)]
enum Protocol {
    Shtrih,
    AtolV3,
    AtolV2,
}

struct Failure {
    code: &'static str,
    ru: String,
    en: String,
    action: &'static str,
}

impl Failure {
    fn from_capture(e: CaptureError, action: &'static str) -> Failure {
        let (ru, en) = if e.line > 0 {
            (format!("строка {}: {}", e.line, e.ru), format!("line {}: {}", e.line, e.en))
        } else {
            (e.ru, e.en)
        };
        Failure { code: e.code, ru, en, action }
    }
}

#[derive(Serialize)]
struct Summary {
    frames: usize,
    bad_checksum: usize,
    truncated: usize,
    garbage: usize,
    device_errors: usize,
}

fn summary(frames: &[DecodedFrame]) -> Summary {
    Summary {
        frames: frames.len(),
        bad_checksum: frames.iter().filter(|f| matches!(f.checksum, Checksum::Bad { .. })).count(),
        truncated: frames.iter().filter(|f| f.kind == FrameKind::Truncated).count(),
        garbage: frames.iter().filter(|f| f.kind == FrameKind::Garbage).count(),
        device_errors: frames.iter().filter(|f| f.error.is_some()).count(),
    }
}

fn protocol(text: &str) -> Result<Protocol, Failure> {
    match text.trim().to_ascii_lowercase().as_str() {
        "shtrih" | "shtrih-m" => Ok(Protocol::Shtrih),
        "atol" | "atol-v3" => Ok(Protocol::AtolV3),
        "atol-v2" => Ok(Protocol::AtolV2),
        "umka" => Err(Failure {
            code: "cli.protocol_invalid",
            ru: "УМКА обменивается по HTTP в виде JSON: такую запись расшифровывать не нужно".into(),
            en: "УМКА speaks HTTP/JSON: its traffic is readable as it is".into(),
            action: "Для УМКА смотрите запросы и ответы HTTP как текст; decode читает shtrih, atol и atol-v2.",
        }),
        other => Err(Failure {
            code: "cli.protocol_invalid",
            ru: format!("Неизвестный протокол «{other}»"),
            en: format!("Unknown protocol {other:?}"),
            action: "Укажите --protocol shtrih, atol или atol-v2.",
        }),
    }
}

fn read_text(path: &PathBuf) -> Result<String, Failure> {
    let unreadable = |e: std::io::Error| Failure {
        code: "decode.file_unreadable",
        ru: format!("Не удалось прочитать {}: {e}", path.display()),
        en: format!("Cannot read {}: {e}", path.display()),
        action: "Проверьте путь к файлу записи и права на него.",
    };
    let bytes = if path.as_os_str() == "-" {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut b).map_err(unreadable)?;
        b
    } else {
        std::fs::read(path).map_err(unreadable)?
    };
    // Windows tools often save UTF-16 with a byte-order mark.
    if let [0xFF, 0xFE, rest @ ..] = bytes.as_slice() {
        let units: Vec<u16> = rest.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
        return Ok(char::decode_utf16(units).map(|c| c.unwrap_or('\u{FFFD}')).collect());
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn capture(a: &DecodeArgs) -> Result<Vec<Chunk>, Failure> {
    const FIX_FILE: &str = "Исправьте строку в файле или сохраните запись заново в одном из форматов из kkm-agent decode --help.";
    const FIX_HEX: &str = "Укажите байты парами шестнадцатеричных цифр, например: 02 05 10 1E 00 00 00 0B.";
    if let Some(path) = &a.file {
        let mut chunks = capture_text::read_capture(&read_text(path)?).map_err(|e| Failure::from_capture(e, FIX_FILE))?;
        if a.swap {
            for c in &mut chunks {
                c.direction = match c.direction {
                    Direction::ToDevice => Direction::FromDevice,
                    Direction::FromDevice => Direction::ToDevice,
                    Direction::Unknown => Direction::Unknown,
                };
            }
        }
        return Ok(chunks);
    }
    let direction = match a.from.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None => Direction::Unknown,
        Some("pc" | "host" | ">") => Direction::ToDevice,
        Some("device" | "kkt" | "<") => Direction::FromDevice,
        Some(other) => {
            return Err(Failure {
                code: "cli.direction_invalid",
                ru: format!("Неизвестное направление «{other}»"),
                en: format!("Unknown direction {other:?}"),
                action: "Укажите --from pc (от компьютера к ККТ) или --from device (от ККТ).",
            })
        }
    };
    let bytes = capture_text::parse_hex(&a.hex.join(" ")).map_err(|e| Failure::from_capture(e, FIX_HEX))?;
    if bytes.is_empty() {
        return Err(Failure { code: "decode.capture_empty", ru: "Не указано ни одного байта".into(), en: "No bytes given".into(), action: FIX_HEX });
    }
    Ok(vec![Chunk { direction, bytes, line: 0 }])
}

fn print_failure(f: &Failure, json: bool) {
    if json {
        let v = serde_json::json!({"error": {"code": f.code, "title_ru": f.ru, "title_en": f.en, "action_ru": f.action}});
        println!("{v}");
    } else {
        eprintln!("Ошибка [{}]: {}", f.code, f.ru);
        eprintln!("  {}", f.en);
        eprintln!("  Что делать: {}", f.action);
    }
}

/// Runs `kkm-agent decode`; no runtime needed.
pub fn run(a: &DecodeArgs) -> ExitCode {
    let (proto, chunks) = match protocol(&a.protocol).and_then(|p| Ok((p, capture(a)?))) {
        Ok(v) => v,
        Err(f) => {
            print_failure(&f, a.json);
            return ExitCode::from(2);
        }
    };
    let (name, frames) = match proto {
        Protocol::Shtrih => ("shtrih", kkm_shtrih::decode::decode(&chunks)),
        Protocol::AtolV3 => ("atol", kkm_atol::decode::decode(&chunks, kkm_atol::decode::Link::V3)),
        Protocol::AtolV2 => ("atol-v2", kkm_atol::decode::decode(&chunks, kkm_atol::decode::Link::V2)),
    };
    let s = summary(&frames);
    let mut out = std::io::stdout().lock();
    let _ = if a.json {
        writeln!(out, "{}", serde_json::json!({"protocol": name, "frames": frames, "summary": s}))
    } else {
        let mut text = format!("Протокол / protocol: {name}\n");
        for (i, f) in frames.iter().enumerate() {
            text.push_str(&f.render(i + 1));
        }
        text.push_str(&format!(
            "Итого / total: кадров {} (frames), с неверной контрольной суммой {} (bad checksum), оборванных {} (truncated), мусор {} (garbage), ошибок ККТ {} (device errors)\n",
            s.frames, s.bad_checksum, s.truncated, s.garbage, s.device_errors
        ));
        out.write_all(text.as_bytes())
    };
    ExitCode::SUCCESS
}
