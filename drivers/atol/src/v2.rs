//! The ATOL v2 frame: `STX | DATA' | ETX | CHK`, for older units (serial only).
//!
//! Inside DATA, `ETX` (0x03) and `DLE` (0x10) are preceded by `DLE`. CHK is the XOR of
//! every byte after STX, stuffing and ETX included. The session around it is
//! ENQ → ACK, frame → ACK (or NAK: resend), EOT.

pub const STX: u8 = 0x02;
pub const ETX: u8 = 0x03;
pub const EOT: u8 = 0x04;
pub const ENQ: u8 = 0x05;
pub const ACK: u8 = 0x06;
pub const DLE: u8 = 0x10;
pub const NAK: u8 = 0x15;

pub fn encode(data: &[u8]) -> Vec<u8> {
    let mut out = vec![STX];
    for &b in data {
        if b == ETX || b == DLE {
            out.push(DLE);
        }
        out.push(b);
    }
    out.push(ETX);
    let chk = out[1..].iter().fold(0u8, |a, b| a ^ b);
    out.push(chk);
    out
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum V2Error {
    NotAFrame,
    Incomplete,
    BadCheck,
}

/// Decodes a whole frame. Returns the data and the bytes used.
pub fn decode(buf: &[u8]) -> Result<(Vec<u8>, usize), V2Error> {
    let (data, expected, got, used) = decode_unchecked(buf)?;
    if got != expected {
        return Err(V2Error::BadCheck);
    }
    Ok((data, used))
}

/// Like [`decode`], but hands back a frame whose check byte is wrong as well: the data,
/// the check expected and the one carried, and the bytes used (for `kkm-agent decode`).
pub fn decode_unchecked(buf: &[u8]) -> Result<(Vec<u8>, u8, u8, usize), V2Error> {
    if buf.first() != Some(&STX) {
        return Err(V2Error::NotAFrame);
    }
    let mut data = Vec::new();
    let mut i = 1;
    loop {
        let &b = buf.get(i).ok_or(V2Error::Incomplete)?;
        i += 1;
        match b {
            DLE => {
                let &n = buf.get(i).ok_or(V2Error::Incomplete)?;
                i += 1;
                data.push(n);
            }
            ETX => break,
            b => data.push(b),
        }
    }
    let &chk = buf.get(i).ok_or(V2Error::Incomplete)?;
    let expected = buf[1..i].iter().fold(0u8, |a, b| a ^ b);
    Ok((data, expected, chk, i + 1))
}
