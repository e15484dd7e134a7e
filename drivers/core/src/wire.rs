//! A bounded cursor over a device's answer bytes, shared by the protocol crates.
//!
//! Answers come from outside: a short or garbled one must become an error, never a
//! panic. Every read here checks its bounds.

/// Reading ran past the end of an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Short(pub &'static str);

impl std::fmt::Display for Short {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "answer too short: {}", self.0)
    }
}

impl From<Short> for crate::DriverError {
    fn from(s: Short) -> Self {
        crate::DriverError::Protocol(s.to_string())
    }
}

#[derive(Debug, Clone)]
pub struct Cursor<'a> {
    data: &'a [u8],
    what: &'static str,
}

impl<'a> Cursor<'a> {
    pub fn new(data: &'a [u8], what: &'static str) -> Cursor<'a> {
        Cursor { data, what }
    }
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], Short> {
        if self.data.len() < n {
            return Err(Short(self.what));
        }
        let (head, tail) = self.data.split_at(n);
        self.data = tail;
        Ok(head)
    }
    pub fn u8(&mut self) -> Result<u8, Short> {
        Ok(self.bytes(1)?[0])
    }
    /// A little-endian unsigned integer of `n` bytes (at most 8 are significant).
    pub fn le(&mut self, n: usize) -> Result<u64, Short> {
        Ok(self.bytes(n)?.iter().take(8).rev().fold(0u64, |a, x| (a << 8) | u64::from(*x)))
    }
    pub fn u16(&mut self) -> Result<u16, Short> {
        Ok(self.le(2)? as u16)
    }
    pub fn u32(&mut self) -> Result<u32, Short> {
        Ok(self.le(4)? as u32)
    }
    /// Printable ASCII of a fixed-width field (padding and control bytes dropped).
    pub fn ascii(&mut self, n: usize) -> Result<String, Short> {
        Ok(self.bytes(n)?.iter().filter(|b| b.is_ascii_graphic()).map(|b| *b as char).collect())
    }
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.data)
    }
    pub fn remaining(&self) -> usize {
        self.data.len()
    }
}
