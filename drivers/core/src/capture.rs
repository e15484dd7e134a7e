//! A port capture turned into meaning: the types `kkm-agent decode` prints.
//!
//! An engineer sniffs the COM port between a cash program and a register and gets bytes
//! with a direction. Each protocol crate turns those bytes into [`DecodedFrame`]s with
//! its own codec (`kkm_shtrih::decode`, `kkm_atol::decode`); this module holds what
//! they share: the direction, the pieces of a capture, the frame kinds, the checksum
//! verdict and the printed form. Reading capture files is in [`crate::capture_text`].
//!
//! Nothing here may panic on any input: a capture is whatever came down the wire.

use crate::error::ErrorInfo;
use serde::Serialize;

/// Who sent the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// From the computer (the cash program, the agent) to the register.
    ToDevice,
    /// From the register to the computer.
    FromDevice,
    /// Not known: plain hex without a direction marker.
    Unknown,
}

impl Direction {
    /// The marker used in captures and in the output: `>` to the register, `<` from it.
    pub fn marker(self) -> &'static str {
        match self {
            Direction::ToDevice => ">",
            Direction::FromDevice => "<",
            Direction::Unknown => "?",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Direction::ToDevice => "ПК→ККТ (PC→device)",
            Direction::FromDevice => "ККТ→ПК (device→PC)",
            Direction::Unknown => "направление неизвестно (direction unknown)",
        }
    }
}

/// A piece of a capture: bytes that went one way, and where they were in the input
/// (line number, 1-based; 0 for hex given on the command line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub direction: Direction,
    pub bytes: Vec<u8>,
    pub line: usize,
}

/// Consecutive chunks of one direction joined: a frame read in several pieces (a port
/// monitor logs every `ReadFile`, often one byte each) is whole again. A change of
/// direction ends a run; the protocols here are half-duplex, so a frame left unfinished
/// when the other side speaks is reported as torn, not glued to what follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub direction: Direction,
    pub bytes: Vec<u8>,
    /// Where each joined chunk starts: (offset in `bytes`, input line).
    starts: Vec<(usize, usize)>,
}

impl Run {
    /// The input line that holds the byte at `offset`.
    pub fn line_at(&self, offset: usize) -> usize {
        self.starts.iter().take_while(|(o, _)| *o <= offset).last().map_or(0, |(_, l)| *l)
    }
}

pub fn runs(capture: &[Chunk]) -> Vec<Run> {
    let mut out: Vec<Run> = Vec::new();
    for c in capture {
        match out.last_mut() {
            Some(last) if last.direction == c.direction => {
                last.starts.push((last.bytes.len(), c.line));
                last.bytes.extend_from_slice(&c.bytes);
            }
            _ => out.push(Run { direction: c.direction, bytes: c.bytes.clone(), starts: vec![(0, c.line)] }),
        }
    }
    out
}

/// A date and time as the output shows it: `2021-07-29 11:29`.
pub fn datetime(dt: &time::PrimitiveDateTime) -> String {
    format!("{:04}-{:02}-{:02} {:02}:{:02}", dt.year(), u8::from(dt.month()), dt.day(), dt.hour(), dt.minute())
}

/// What a run of bytes turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FrameKind {
    /// A one-byte link control (ENQ, ACK, NAK, EOT).
    Control,
    /// A whole frame (its checksum may still be wrong: see [`Checksum`]).
    Frame,
    /// A frame that starts but ends before its declared length.
    Truncated,
    /// Bytes that are no frame at all.
    Garbage,
}

/// The checksum verdict of a frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "verdict")]
pub enum Checksum {
    /// No checksum (control bytes, garbage, torn frames).
    None,
    Good { name: &'static str, value: u8 },
    Bad { name: &'static str, expected: u8, got: u8 },
}

/// One named field of a frame, in Russian and English.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Field {
    pub name_ru: &'static str,
    pub name_en: &'static str,
    pub value: String,
}

/// A device error carried in an answer: the raw code and its explanation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FrameError {
    pub raw: u8,
    pub info: ErrorInfo,
}

/// One thing that went down the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DecodedFrame {
    pub direction: Direction,
    /// The direction was not in the capture and was guessed from the content.
    pub direction_guessed: bool,
    /// The input line the frame starts on (0: the command line).
    pub line: usize,
    #[serde(serialize_with = "hex_bytes")]
    pub raw: Vec<u8>,
    pub kind: FrameKind,
    /// What it is: "ENQ", "запрос 11h …", "ответ …" (Russian / English).
    pub title: String,
    pub checksum: Checksum,
    pub fields: Vec<Field>,
    pub error: Option<FrameError>,
    /// Anything else worth saying: a packet id, why bytes are garbage, a field that
    /// could not be read.
    pub notes: Vec<String>,
}

impl DecodedFrame {
    pub fn new(direction: Direction, line: usize, raw: &[u8], kind: FrameKind, title: impl Into<String>) -> DecodedFrame {
        DecodedFrame {
            direction,
            direction_guessed: false,
            line,
            raw: raw.to_vec(),
            kind,
            title: title.into(),
            checksum: Checksum::None,
            fields: Vec::new(),
            error: None,
            notes: Vec::new(),
        }
    }

    pub fn field(&mut self, name_ru: &'static str, name_en: &'static str, value: impl Into<String>) {
        self.fields.push(Field { name_ru, name_en, value: value.into() });
    }

    pub fn note(&mut self, text: impl Into<String>) {
        self.notes.push(text.into());
    }

    /// Bytes that are no frame.
    pub fn garbage(direction: Direction, line: usize, raw: &[u8], why: &str) -> DecodedFrame {
        let mut f = DecodedFrame::new(direction, line, raw, FrameKind::Garbage, "мусор, не кадр (garbage, not a frame)");
        f.note(why);
        f
    }

    /// The frame in the text `kkm-agent decode` prints: a head line, then indented
    /// details. Every line of a frame is greppable on its own.
    pub fn render(&self, index: usize) -> String {
        let mut out = format!("#{index} {} {}", self.direction.marker(), self.direction.label());
        if self.direction_guessed {
            out.push_str(" [угадано / guessed]");
        }
        if self.line > 0 {
            out.push_str(&format!(" (строка {} / line {})", self.line, self.line));
        }
        out.push_str(&format!(": {}\n", self.title));
        out.push_str(&format!("    байты / bytes: {}\n", hex(&self.raw)));
        match &self.checksum {
            Checksum::None => {}
            Checksum::Good { name, value } => out.push_str(&format!("    {name}: {value:02X} верна / OK\n")),
            Checksum::Bad { name, expected, got } => out.push_str(&format!(
                "    {name}: {got:02X} НЕВЕРНА, ожидалась {expected:02X} / BAD, expected {expected:02X}\n"
            )),
        }
        for f in &self.fields {
            out.push_str(&format!("    {} / {}: {}\n", f.name_ru, f.name_en, f.value));
        }
        if let Some(e) = &self.error {
            out.push_str(&format!(
                "    ошибка / error {:02X}h [{}]: {} / {}\n      Что делать: {}\n",
                e.raw, e.info.code, e.info.title_ru, e.info.title_en, e.info.action_ru
            ));
        }
        for n in &self.notes {
            out.push_str(&format!("    примечание / note: {n}\n"));
        }
        out
    }
}

/// Bytes as upper-case hex pairs separated by spaces.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(" ")
}

fn hex_bytes<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_join_one_direction_and_split_on_a_change() {
        let c = |d, b: &[u8], line| Chunk { direction: d, bytes: b.to_vec(), line };
        let capture = [
            c(Direction::ToDevice, &[0x05], 1),
            c(Direction::FromDevice, &[0x02, 0x03], 2),
            c(Direction::FromDevice, &[0x88], 3),
            c(Direction::ToDevice, &[0x06], 4),
        ];
        let r = runs(&capture);
        assert_eq!(r.len(), 3);
        assert_eq!(r[1].bytes, vec![0x02, 0x03, 0x88]);
        assert_eq!((r[1].line_at(0), r[1].line_at(1), r[1].line_at(2)), (2, 2, 3));
    }

    #[test]
    fn render_shows_a_bad_checksum_and_the_error() {
        let mut f = DecodedFrame::new(Direction::FromDevice, 7, &[0x02, 0x02, 0x10, 0x6B, 0x78], FrameKind::Frame, "ответ");
        f.checksum = Checksum::Bad { name: "LRC", expected: 0x79, got: 0x78 };
        let text = f.render(3);
        assert!(text.starts_with("#3 < ККТ→ПК"), "{text}");
        assert!(text.contains("LRC: 78 НЕВЕРНА, ожидалась 79"), "{text}");
    }
}
