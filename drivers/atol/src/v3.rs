//! The ATOL v3 link-layer frame: `FE | LEN0 | LEN1 | ID | DATA | CRC`.
//!
//! * LEN is the unescaped length of DATA in two 7-bit halves (LEN0 low, LEN1 high).
//! * DATA and CRC are escaped: `FE` → `FD EE`, `FD` → `FD ED`.
//! * CRC-8 (polynomial 0x31, init 0xFF, no reflection, no final XOR) covers ID and the
//!   unescaped DATA.
//! * Packet ids run 0x00..=0xDF; 0xF0 carries unsolicited asynchronous results.
//!
//! Pure functions over bytes: decoding anything never panics.

use crc::{Crc, CRC_8_NRSC_5};

/// CRC-8, poly 0x31, init 0xFF, unreflected, no XOR out (the `crc` crate's NRSC-5).
pub const CRC8: Crc<u8> = Crc::<u8>::new(&CRC_8_NRSC_5);

pub const START: u8 = 0xFE;
pub const ESC: u8 = 0xFD;
pub const ASYNC_ID: u8 = 0xF0;
pub const MAX_ID: u8 = 0xDF;
pub const MAX_DATA: usize = 0x3FFF;

/// Buffer commands (first byte of a host packet's DATA).
pub const ADD: u8 = 0xC1;
pub const ACK: u8 = 0xC2;
pub const REQ: u8 = 0xC3;
pub const ABORT: u8 = 0xC4;
/// ADD flags.
pub const NEED_RESULT: u8 = 0x01;
pub const IGNORE_ERROR: u8 = 0x02;
pub const WAIT_ASYNC: u8 = 0x04;

/// Task states (first byte of a device reply).
pub const PENDING: u8 = 0xA1;
pub const IN_PROGRESS: u8 = 0xA2;
pub const RESULT: u8 = 0xA3;
pub const ERROR: u8 = 0xA4;
pub const STOPPED: u8 = 0xA5;
pub const ASYNC_RESULT: u8 = 0xA6;
pub const ASYNC_ERROR: u8 = 0xA7;
/// Buffer errors.
pub const OVERFLOW: u8 = 0xB1;
pub const TID_EXISTS: u8 = 0xB2;
pub const NOT_FOUND: u8 = 0xB3;
pub const ILLEGAL: u8 = 0xB4;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    NotAFrame,
    Incomplete,
    BadEscape,
    BadCrc { expected: u8, got: u8 },
    TooLong,
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

fn escape_into(out: &mut Vec<u8>, b: u8) {
    match b {
        START => out.extend_from_slice(&[ESC, 0xEE]),
        ESC => out.extend_from_slice(&[ESC, 0xED]),
        b => out.push(b),
    }
}

pub fn crc(id: u8, data: &[u8]) -> u8 {
    let mut d = CRC8.digest();
    d.update(&[id]);
    d.update(data);
    d.finalize()
}

/// Encodes a packet.
pub fn encode(id: u8, data: &[u8]) -> Result<Vec<u8>, FrameError> {
    if data.len() > MAX_DATA {
        return Err(FrameError::TooLong);
    }
    let mut out = Vec::with_capacity(data.len() + 6);
    out.extend_from_slice(&[START, (data.len() & 0x7F) as u8, (data.len() >> 7) as u8, id]);
    for &b in data {
        escape_into(&mut out, b);
    }
    escape_into(&mut out, crc(id, data));
    Ok(out)
}

/// A decoded packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    pub id: u8,
    pub data: Vec<u8>,
}

/// Decodes one packet from the front of `buf`. `Ok(None)`: need more bytes.
/// On success also returns how many bytes were used.
pub fn decode(buf: &[u8]) -> Result<Option<(Packet, usize)>, FrameError> {
    match decode_unchecked(buf)? {
        None => Ok(None),
        Some((packet, got, used)) => {
            let expected = crc(packet.id, &packet.data);
            if got != expected {
                return Err(FrameError::BadCrc { expected, got });
            }
            Ok(Some((packet, used)))
        }
    }
}

/// Like [`decode`], but hands back a packet whose CRC is wrong as well, with the CRC
/// byte it carried and the bytes it took: `kkm-agent decode` shows such a packet and
/// reads on after it. Escapes and lengths are checked all the same.
pub fn decode_unchecked(buf: &[u8]) -> Result<Option<(Packet, u8, usize)>, FrameError> {
    let Some(&first) = buf.first() else { return Ok(None) };
    if first != START {
        return Err(FrameError::NotAFrame);
    }
    if buf.len() < 4 {
        return Ok(None);
    }
    if buf[1] & 0x80 != 0 || buf[2] & 0x80 != 0 {
        return Err(FrameError::NotAFrame);
    }
    let len = usize::from(buf[1]) | (usize::from(buf[2]) << 7);
    let id = buf[3];
    let mut data = Vec::with_capacity(len + 1);
    let mut i = 4;
    while data.len() < len + 1 {
        let Some(&b) = buf.get(i) else { return Ok(None) };
        i += 1;
        match b {
            START => return Err(FrameError::BadEscape),
            ESC => {
                let Some(&n) = buf.get(i) else { return Ok(None) };
                i += 1;
                data.push(match n {
                    0xEE => START,
                    0xED => ESC,
                    _ => return Err(FrameError::BadEscape),
                });
            }
            b => data.push(b),
        }
    }
    let got = data.pop().unwrap_or(0);
    Ok(Some((Packet { id, data }, got, i)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_check_value() {
        assert_eq!(CRC8.checksum(b"123456789"), 0xF7);
    }

    #[test]
    fn escaping_roundtrip() {
        let f = encode(5, &[0xFE, 0xFD, 0x00]).unwrap();
        let (p, used) = decode(&f).unwrap().unwrap();
        assert_eq!(used, f.len());
        assert_eq!(p.data, vec![0xFE, 0xFD, 0x00]);
        assert!(decode(&f[..f.len() - 1]).unwrap().is_none());
    }
}
