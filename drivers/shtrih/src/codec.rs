//! Shtrih-M frames and field encodings. Pure: bytes in, values out, never a panic.
//!
//! A frame is `STX | N | CMD | params | LRC`: N counts CMD and params (at most 255),
//! LRC is the XOR of N and every byte after it. Two-byte commands start with 0xFF and
//! both bytes are counted in N and echoed in the answer. An answer is the command
//! echo, an error byte (0 = success) and the fields.

use kkm_core::{Money, Quantity};

pub const STX: u8 = 0x02;
pub const ENQ: u8 = 0x05;
pub const ACK: u8 = 0x06;
pub const NAK: u8 = 0x15;

/// The longest payload N can describe.
pub const MAX_PAYLOAD: usize = 255;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodecError {
    TooLong(usize),
    BadLrc { expected: u8, got: u8 },
    Short(&'static str),
    NotAFrame(u8),
}

impl std::fmt::Display for CodecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CodecError::TooLong(n) => write!(f, "payload of {n} bytes exceeds 255"),
            CodecError::BadLrc { expected, got } => write!(f, "LRC {got:#04x}, expected {expected:#04x}"),
            CodecError::Short(what) => write!(f, "answer too short: {what}"),
            CodecError::NotAFrame(b) => write!(f, "expected STX, got {b:#04x}"),
        }
    }
}

/// XOR of all bytes.
pub fn lrc(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0, |a, b| a ^ b)
}

/// The command code bytes: one byte, or 0xFF and a second byte.
pub fn command_bytes(cmd: u16) -> Vec<u8> {
    if cmd > 0xFF {
        vec![(cmd >> 8) as u8, cmd as u8]
    } else {
        vec![cmd as u8]
    }
}

/// Wraps a payload (command bytes + params) in a frame.
pub fn frame(payload: &[u8]) -> Result<Vec<u8>, CodecError> {
    if payload.len() > MAX_PAYLOAD || payload.is_empty() {
        return Err(CodecError::TooLong(payload.len()));
    }
    let mut out = Vec::with_capacity(payload.len() + 3);
    out.push(STX);
    out.push(payload.len() as u8);
    out.extend_from_slice(payload);
    out.push(lrc(&out[1..]));
    Ok(out)
}

/// Builds a request frame.
pub fn request(cmd: u16, params: &[u8]) -> Result<Vec<u8>, CodecError> {
    let mut payload = command_bytes(cmd);
    payload.extend_from_slice(params);
    frame(&payload)
}

/// Parses a whole frame (with STX) into its payload.
pub fn unframe(bytes: &[u8]) -> Result<&[u8], CodecError> {
    let (&stx, rest) = bytes.split_first().ok_or(CodecError::Short("empty"))?;
    if stx != STX {
        return Err(CodecError::NotAFrame(stx));
    }
    let (&n, rest) = rest.split_first().ok_or(CodecError::Short("length"))?;
    let n = usize::from(n);
    if rest.len() < n + 1 {
        return Err(CodecError::Short("payload"));
    }
    let payload = &rest[..n];
    let got = rest[n];
    let expected = lrc(&bytes[1..n + 2]);
    if got != expected {
        return Err(CodecError::BadLrc { expected, got });
    }
    Ok(payload)
}

/// Splits a payload into the command code and the rest.
pub fn split_command(payload: &[u8]) -> Result<(u16, &[u8]), CodecError> {
    match payload {
        [0xFF, c, rest @ ..] => Ok((0xFF00 | u16::from(*c), rest)),
        [c, rest @ ..] => Ok((u16::from(*c), rest)),
        [] => Err(CodecError::Short("command")),
    }
}

/// A decoded answer: command echo, error code, fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub cmd: u16,
    pub error: u8,
    pub data: Vec<u8>,
}

impl Answer {
    pub fn parse(payload: &[u8]) -> Result<Answer, CodecError> {
        let (cmd, rest) = split_command(payload)?;
        let (&error, data) = rest.split_first().ok_or(CodecError::Short("error byte"))?;
        Ok(Answer { cmd, error, data: data.to_vec() })
    }

    /// The payload of this answer (for the emulator).
    pub fn payload(&self) -> Vec<u8> {
        let mut p = command_bytes(self.cmd);
        p.push(self.error);
        p.extend_from_slice(&self.data);
        p
    }
}

/// Builds the parameter bytes of a request.
#[derive(Debug, Default, Clone)]
pub struct Writer(pub Vec<u8>);

impl Writer {
    pub fn new() -> Writer {
        Writer(Vec::new())
    }
    pub fn u8(mut self, v: u8) -> Self {
        self.0.push(v);
        self
    }
    pub fn u16(mut self, v: u16) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn u32(mut self, v: u32) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    /// A little-endian unsigned integer in `n` bytes (values beyond are cut).
    pub fn uint(mut self, v: u64, n: usize) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes()[..n.min(8)]);
        self
    }
    /// Money: 5 bytes of kopecks. Negative sums do not exist on this wire.
    pub fn money(self, m: Money) -> Self {
        self.uint(m.0.max(0) as u64, 5)
    }
    /// Quantity in FF46: 6 bytes of millionths; ours are thousandths.
    pub fn quantity6(self, q: Quantity) -> Self {
        self.uint((q.0.max(0) as u64).saturating_mul(1000), 6)
    }
    /// Text in cp1251, cut to `max` bytes; characters cp1251 lacks become '?'.
    pub fn text(mut self, s: &str, max: usize) -> Self {
        let mut bytes = cp1251(s);
        bytes.truncate(max);
        self.0.extend_from_slice(&bytes);
        self
    }
    /// Text in cp1251 padded with zeros to exactly `width` bytes.
    pub fn text_fixed(mut self, s: &str, width: usize) -> Self {
        let mut bytes = cp1251(s);
        bytes.resize(width, 0);
        self.0.extend_from_slice(&bytes);
        self
    }
    pub fn bytes(mut self, b: &[u8]) -> Self {
        self.0.extend_from_slice(b);
        self
    }
    pub fn done(self) -> Vec<u8> {
        self.0
    }
}

/// cp1251 bytes of a text: typographic characters mapped ([`kkm_core::text`]), any
/// other character outside the code page written as '?', never as an HTML reference.
/// The driver refuses such text before it gets here; this is the last line.
pub fn cp1251(s: &str) -> Vec<u8> {
    use kkm_core::text::{encode, Charset};
    encode(s, Charset::Cp1251).unwrap_or_else(|_| {
        s.chars().flat_map(|c| encode(&c.to_string(), Charset::Cp1251).unwrap_or_else(|_| vec![b'?'])).collect()
    })
}

pub fn from_cp1251(b: &[u8]) -> String {
    let end = b.iter().position(|c| *c == 0).unwrap_or(b.len());
    encoding_rs::WINDOWS_1251.decode(&b[..end]).0.trim_end().to_string()
}

/// Answer fields are read with the shared bounded cursor; Shtrih's own field types
/// (5-byte money, 6-byte quantity) come from [`ShtrihFields`].
pub use kkm_core::wire::{Cursor as Reader, Short};

pub trait ShtrihFields {
    /// 5-byte little-endian kopecks.
    fn money(&mut self) -> Result<Money, Short>;
    /// FF46 quantity: 6 bytes of millionths, back to our thousandths.
    fn quantity6(&mut self) -> Result<Quantity, Short>;
    fn uint(&mut self, n: usize) -> Result<u64, Short>;
}

impl ShtrihFields for Reader<'_> {
    fn money(&mut self) -> Result<Money, Short> {
        Ok(Money(self.le(5)? as i64))
    }
    fn quantity6(&mut self) -> Result<Quantity, Short> {
        Ok(Quantity((self.le(6)? / 1000) as i64))
    }
    fn uint(&mut self, n: usize) -> Result<u64, Short> {
        self.le(n)
    }
}

/// FN date-time: YY MM DD HH MM.
pub fn read_fn_datetime(r: &mut Reader) -> Result<time::PrimitiveDateTime, Short> {
    let b = r.bytes(5)?;
    Ok(datetime_from(b[0], b[1], b[2], b[3], b[4], 0))
}

pub fn fn_datetime_bytes(dt: &time::PrimitiveDateTime) -> [u8; 5] {
    [(dt.year() % 100) as u8, u8::from(dt.month()), dt.day(), dt.hour(), dt.minute()]
}

/// Builds a date-time from device fields, clamping nonsense (a device with a dead
/// clock battery sends zeros) to the epoch of 2000-01-01.
pub fn datetime_from(yy: u8, mo: u8, dd: u8, hh: u8, mi: u8, ss: u8) -> time::PrimitiveDateTime {
    let date = time::Month::try_from(mo)
        .ok()
        .and_then(|m| time::Date::from_calendar_date(2000 + i32::from(yy), m, dd).ok())
        .unwrap_or(time::macros::date!(2000 - 01 - 01));
    let t = time::Time::from_hms(hh, mi, ss).unwrap_or(time::Time::MIDNIGHT);
    time::PrimitiveDateTime::new(date, t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_roundtrip_and_reject_bad_lrc() {
        let f = request(0x10, &[0x1E, 0, 0, 0]).unwrap();
        assert_eq!(f, vec![0x02, 0x05, 0x10, 0x1E, 0x00, 0x00, 0x00, 0x0B]);
        assert_eq!(unframe(&f).unwrap(), &[0x10, 0x1E, 0, 0, 0]);
        let mut bad = f.clone();
        bad[7] ^= 1;
        assert!(matches!(unframe(&bad), Err(CodecError::BadLrc { .. })));
        assert!(unframe(&[0x02]).is_err());
        assert!(unframe(&[]).is_err());
        assert!(request(0x10, &[0; 300]).is_err());
    }

    #[test]
    fn reader_never_panics_on_short_data() {
        let mut r = Reader::new(&[1, 2], "test");
        assert!(r.u32().is_err());
        assert_eq!(r.u16().unwrap(), 0x0201);
        assert!(r.u8().is_err());
    }

    #[test]
    fn no_html_references() {
        assert_eq!(cp1251("Кофе ☕"), [0xCA, 0xEE, 0xF4, 0xE5, 0x20, b'?']);
        assert!(!Writer::new().text("💅", 128).done().contains(&b'&'));
    }

    #[test]
    fn quantity_scales_exactly() {
        let w = Writer::new().quantity6(Quantity(1500)).done();
        let mut r = Reader::new(&w, "q");
        assert_eq!(r.uint(6).unwrap(), 1_500_000);
    }
}
