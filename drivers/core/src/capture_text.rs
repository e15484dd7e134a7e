//! Reading a port capture from text: what an engineer has after sniffing a COM port.
//!
//! Three forms are read, line by line, and may be mixed in one file:
//!
//! * **Our own, plain form**: `> 02 05 10 1E 00 00 00 0B` (computer → register),
//!   `< 06` (register → computer), or bare hex without a marker (direction unknown).
//!   `#` starts a comment; blank lines are skipped. Bytes may be written `02 05`,
//!   `0205`, `0x02,0x05`.
//! * **`socat -x` and `socat -x -v`** (Linux, macOS): a header line
//!   `> 2026/11/26 08:18:36.000175689  length=8 from=0 to=7` (`>` is data from socat's
//!   first address to its second, `<` back), then data lines that start with a space,
//!   hex pairs and, with `-v`, two spaces and the printable text; `--` ends a block.
//!   The layout is socat's own (read from its output; its manual says `-x` writes the
//!   data "in hexadecimal, prefixed with > or <"). `length=` is checked against the
//!   bytes read. Plain `socat -v` (text only) cannot be turned back into bytes.
//! * **Portmon** (Sysinternals, Windows) logs saved with *Show Hex* on: tab-separated
//!   rows whose Request column is `IRP_MJ_WRITE` (computer → register) or
//!   `IRP_MJ_READ` (register → computer) and whose last column is
//!   `Length N: 02 05 …`. Other rows (IOCTLs, open, close) carry no data and are
//!   skipped. The columns are as the Sysinternals documentation describes them; the
//!   `Length N:` form is from published logs (unconfirmed by a document). Portmon
//!   shows only the first few dozen bytes of a long buffer: such a row is read as far
//!   as it goes, and the frame it cuts shows as torn.
//!
//! * **interceptty** (Linux) output: one byte a line, `> \t0x06 (…)` or `< 0x05 (…)`,
//!   optionally after a `[HH:MM SS.usec]` time stamp. Beware: interceptty writes `>` for
//!   bytes read from the back device (the register) and `<` for bytes from the program
//!   (read from its source, `dumpbuff(1, …)` for the back device), the opposite of our
//!   plain form. A file is read as interceptty output when a line has its `0xNN (…)`
//!   shape; then every such line counts with interceptty's directions.
//!
//! Any other line is an error naming the line: a capture is never half-read silently.

use crate::capture::{Chunk, Direction};

/// Why a capture or a hex string could not be read. `code` is stable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureError {
    pub code: &'static str,
    pub ru: String,
    pub en: String,
    /// 1-based line of the capture; 0 for hex from the command line.
    pub line: usize,
}

impl CaptureError {
    fn at(self, line: usize) -> CaptureError {
        CaptureError { line, ..self }
    }
}

/// Parses hex bytes: pairs of hex digits, optionally separated by spaces, tabs, commas
/// or colons, each group optionally prefixed with `0x`.
pub fn parse_hex(text: &str) -> Result<Vec<u8>, CaptureError> {
    let mut out = Vec::new();
    for token in text.split(|c: char| c.is_whitespace() || c == ',' || c == ':' || c == '-').filter(|t| !t.is_empty()) {
        let digits = token.strip_prefix("0x").or_else(|| token.strip_prefix("0X")).unwrap_or(token);
        if let Some(bad) = digits.chars().find(|c| !c.is_ascii_hexdigit()) {
            return Err(CaptureError {
                code: "decode.hex_invalid",
                ru: format!("Не шестнадцатеричный символ «{bad}» в «{token}»: байты пишутся парами цифр 0–9 и букв A–F"),
                en: format!("Not a hex digit {bad:?} in {token:?}: bytes are pairs of 0-9 and A-F"),
                line: 0,
            });
        }
        if digits.len() % 2 != 0 {
            return Err(CaptureError {
                code: "decode.hex_odd_length",
                ru: format!("Нечётное число шестнадцатеричных цифр в «{token}»: каждый байт — ровно две цифры"),
                en: format!("Odd number of hex digits in {token:?}: every byte is exactly two digits"),
                line: 0,
            });
        }
        for pair in digits.as_bytes().chunks(2) {
            let s = std::str::from_utf8(pair).unwrap_or("00");
            out.push(u8::from_str_radix(s, 16).unwrap_or(0));
        }
    }
    Ok(out)
}

/// A `socat -x` block header: direction and the announced length.
fn socat_header(line: &str) -> Option<(Direction, usize)> {
    let direction = match line.as_bytes().first()? {
        b'>' => Direction::ToDevice,
        b'<' => Direction::FromDevice,
        _ => return None,
    };
    let mut words = line[1..].split_whitespace();
    let date = words.next()?;
    let is_date = date.len() == 10 && date.bytes().enumerate().all(|(i, b)| if i == 4 || i == 7 { b == b'/' } else { b.is_ascii_digit() });
    if !is_date {
        return None;
    }
    let length = line.split_whitespace().find_map(|w| w.strip_prefix("length="))?.parse().ok()?;
    Some((direction, length))
}

/// A Portmon row with data: direction and the bytes after `Length N:` (as many as the
/// row shows; Portmon may show fewer than N).
fn portmon_row(line: &str) -> Option<Result<(Direction, Vec<u8>), CaptureError>> {
    let direction = if line.contains("IRP_MJ_WRITE") {
        Direction::ToDevice
    } else if line.contains("IRP_MJ_READ") {
        Direction::FromDevice
    } else {
        return None;
    };
    let at = line.find("Length ")?;
    let rest = &line[at + "Length ".len()..];
    let (n, data) = rest.split_once(':').unwrap_or((rest, ""));
    n.trim().parse::<usize>().ok()?;
    Some(parse_hex(data).map(|b| (direction, b)).map_err(|e| CaptureError {
        ru: format!("{} (в Portmon включите Options → Show Hex и сохраните журнал заново)", e.ru),
        en: format!("{} (turn on Options → Show Hex in Portmon and save the log again)", e.en),
        ..e
    }))
}

/// An interceptty line: direction (interceptty's `>` is the register → computer) and the
/// byte. With `annotated`, only a line with the `(…)` character annotation counts (how
/// a file is recognised as interceptty output).
fn interceptty_byte(line: &str, annotated: bool) -> Option<(Direction, u8)> {
    let mut rest = line.trim_start();
    if rest.starts_with('[') {
        rest = rest[rest.find(']')? + 1..].trim_start();
    }
    let direction = match rest.as_bytes().first()? {
        b'>' => Direction::FromDevice,
        b'<' => Direction::ToDevice,
        _ => return None,
    };
    let rest = rest[1..].trim_start();
    let hex = rest.strip_prefix("0x")?;
    let (digits, tail) = (hex.get(..2)?, hex.get(2..)?.trim());
    let byte = u8::from_str_radix(digits, 16).ok()?;
    let ok_tail = if annotated { tail.starts_with('(') && tail.ends_with(')') } else { tail.is_empty() || tail.starts_with('(') };
    ok_tail.then_some((direction, byte))
}

fn unreadable(line: &str) -> CaptureError {
    let shown: String = line.chars().take(60).collect();
    CaptureError {
        code: "decode.capture_line_unreadable",
        ru: format!("Строка не похожа ни на шестнадцатеричные байты, ни на журнал socat -x или Portmon: «{shown}»"),
        en: format!("The line is neither hex bytes nor a socat -x or Portmon log line: {shown:?}"),
        line: 0,
    }
}

/// Reads a capture in any of the forms above into chunks with a direction.
pub fn read_capture(text: &str) -> Result<Vec<Chunk>, CaptureError> {
    let mut chunks = Vec::new();
    let interceptty = text.lines().any(|l| interceptty_byte(l, true).is_some());
    // An open socat block: direction, announced length, first line, bytes so far.
    let mut block: Option<(Direction, usize, usize, Vec<u8>)> = None;
    let close = |block: &mut Option<(Direction, usize, usize, Vec<u8>)>, chunks: &mut Vec<Chunk>| -> Result<(), CaptureError> {
        if let Some((direction, length, line, bytes)) = block.take() {
            if bytes.len() != length {
                return Err(CaptureError {
                    code: "decode.capture_length_mismatch",
                    ru: format!("В блоке socat объявлено {length} байт, а прочитано {}: журнал повреждён или обрезан", bytes.len()),
                    en: format!("The socat block announces {length} bytes but holds {}: the log is damaged or cut", bytes.len()),
                    line,
                });
            }
            chunks.push(Chunk { direction, bytes, line });
        }
        Ok(())
    };
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim_end_matches('\r');
        if block.is_some() && line.starts_with(' ') && !line.trim().is_empty() {
            let hex_part = line[1..].split("  ").next().unwrap_or("");
            let bytes = parse_hex(hex_part).map_err(|e| e.at(n))?;
            if let Some(b) = block.as_mut() {
                b.3.extend_from_slice(&bytes);
            }
            continue;
        }
        close(&mut block, &mut chunks)?;
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed == "--" {
            continue;
        }
        if interceptty {
            if let Some((direction, byte)) = interceptty_byte(trimmed, false) {
                chunks.push(Chunk { direction, bytes: vec![byte], line: n });
                continue;
            }
        }
        if let Some((direction, length)) = socat_header(trimmed) {
            block = Some((direction, length, n, Vec::new()));
            continue;
        }
        if let Some(row) = portmon_row(trimmed) {
            let (direction, bytes) = row.map_err(|e| e.at(n))?;
            if !bytes.is_empty() {
                chunks.push(Chunk { direction, bytes, line: n });
            }
            continue;
        }
        if trimmed.contains("IRP_MJ_") || trimmed.contains("IOCTL_") {
            continue; // a Portmon row without data
        }
        let body = trimmed.split('#').next().unwrap_or("").trim();
        let (direction, hex) = match body.as_bytes().first() {
            Some(b'>') => (Direction::ToDevice, &body[1..]),
            Some(b'<') => (Direction::FromDevice, &body[1..]),
            _ => (Direction::Unknown, body),
        };
        let bytes = parse_hex(hex).map_err(|e| {
            if direction == Direction::Unknown && e.code == "decode.hex_invalid" { unreadable(trimmed).at(n) } else { e.at(n) }
        })?;
        if !bytes.is_empty() {
            chunks.push(Chunk { direction, bytes, line: n });
        }
    }
    close(&mut block, &mut chunks)?;
    if chunks.is_empty() {
        return Err(CaptureError {
            code: "decode.capture_empty",
            ru: "В записи обмена нет ни одного байта".into(),
            en: "The capture holds no bytes".into(),
            line: 0,
        });
    }
    Ok(chunks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_in_its_usual_spellings() {
        assert_eq!(parse_hex("02 05 10").unwrap(), vec![2, 5, 0x10]);
        assert_eq!(parse_hex("020510").unwrap(), vec![2, 5, 0x10]);
        assert_eq!(parse_hex("0x02,0x05, 0xff").unwrap(), vec![2, 5, 0xFF]);
        assert_eq!(parse_hex("02:05").unwrap(), vec![2, 5]);
        assert_eq!(parse_hex("025").unwrap_err().code, "decode.hex_odd_length");
        assert_eq!(parse_hex("02 zz").unwrap_err().code, "decode.hex_invalid");
    }

    #[test]
    fn own_form_with_markers_and_comments() {
        let c = read_capture("# a capture\n> 05\n< 15  # idle\n\n02 01 FC FD\n").unwrap();
        assert_eq!(c.len(), 3);
        assert_eq!((c[0].direction, c[0].line), (Direction::ToDevice, 2));
        assert_eq!(c[1].direction, Direction::FromDevice);
        assert_eq!(c[2].direction, Direction::Unknown);
    }

    /// Output of socat 1.7.4 (`socat -x -v STDIO SYSTEM:…`), as it printed it.
    #[test]
    fn socat_hex_and_verbose_blocks() {
        let text = "> 2026/11/26 08:18:36.000175689  length=8 from=0 to=7\n 02 05 10 1e 00 00 00 0b                          ........\n--\n< 2026/11/26 08:18:36.000386373  length=7 from=0 to=6\n 06 02 03 88 00 1e 95                             .......\n--\n";
        let c = read_capture(text).unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].bytes, vec![2, 5, 0x10, 0x1E, 0, 0, 0, 0x0B]);
        assert_eq!(c[1].direction, Direction::FromDevice);
        let plain = "> 2026/11/26 08:18:41.000772386  length=3 from=0 to=2\n 02 01 fc\n";
        assert_eq!(read_capture(plain).unwrap()[0].bytes, vec![2, 1, 0xFC]);
        let cut = "> 2026/11/26 08:18:41.000772386  length=4 from=0 to=3\n 02 01 fc\n";
        let e = read_capture(cut).unwrap_err();
        assert_eq!((e.code, e.line), ("decode.capture_length_mismatch", 1));
    }

    /// Lines in the shape interceptty's `dumpbuff` prints them (with and without the
    /// time stamp of `-T`); `>` is from the register there.
    #[test]
    fn interceptty_bytes_with_its_own_directions() {
        let text = "< 0x05 ([ENQ])\n> \t0x15 ([NAK])\n[10:02 03.000123]< 0x02 ([STX])\n< 0x41 (A)\n< 0x28 (()\n";
        let c = read_capture(text).unwrap();
        let got: Vec<(Direction, u8)> = c.iter().map(|c| (c.direction, c.bytes[0])).collect();
        assert_eq!(
            got,
            vec![
                (Direction::ToDevice, 0x05),
                (Direction::FromDevice, 0x15),
                (Direction::ToDevice, 0x02),
                (Direction::ToDevice, 0x41),
                (Direction::ToDevice, 0x28)
            ]
        );
        // Without the annotation the same line is our plain form, with our directions.
        assert_eq!(read_capture("> 0x05\n").unwrap()[0].direction, Direction::ToDevice);
    }

    #[test]
    fn portmon_rows() {
        let text = "0\t0.00000310\tkassa.exe\tIOCTL_SERIAL_SET_BAUD_RATE\tSerial0\tSUCCESS\tRate: 115200\n1\t0.00002120\tkassa.exe\tIRP_MJ_WRITE\tSerial0\tSUCCESS\tLength 1: 05\n2\t0.00400000\tkassa.exe\tIRP_MJ_READ\tSerial0\tSUCCESS\tLength 1: 15\n3\t0.1\tkassa.exe\tIRP_MJ_READ\tSerial0\tTIMEOUT\tLength 0\n";
        let c = read_capture(text).unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!((c[0].direction, c[0].bytes.clone(), c[0].line), (Direction::ToDevice, vec![5], 2));
        assert_eq!((c[1].direction, c[1].bytes.clone()), (Direction::FromDevice, vec![0x15]));
        let ascii = "1\t0.1\tkassa.exe\tIRP_MJ_WRITE\tSerial0\tSUCCESS\tLength 3: ..X\n";
        assert_eq!(read_capture(ascii).unwrap_err().line, 1);
    }

    #[test]
    fn unreadable_lines_and_empty_captures_are_errors() {
        let e = read_capture("> 05\nhello world\n").unwrap_err();
        assert_eq!((e.code, e.line), ("decode.capture_line_unreadable", 2));
        assert_eq!(read_capture("> 0\n").unwrap_err().code, "decode.hex_odd_length");
        assert_eq!(read_capture("# nothing\n\n").unwrap_err().code, "decode.capture_empty");
    }
}
