//! Jute, ZooKeeper's binary record format: big-endian integers, length-prefixed
//! buffers and strings (length -1 means null), count-prefixed vectors, one-byte
//! booleans.
//!
//! This module knows only the primitives. The records themselves live in
//! [`crate::proto`]. Every length read from the wire is checked against the bytes
//! actually present before anything is allocated, so a hostile length cannot make
//! the server allocate more than the frame it already holds.

use thiserror::Error;

/// Why a record could not be decoded. Always the peer's fault, never ours.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DecodeError {
    #[error("record ends early: needed {needed} more bytes at offset {offset}")]
    Truncated { offset: usize, needed: usize },
    #[error("negative length {length} at offset {offset}")]
    NegativeLength { offset: usize, length: i32 },
    #[error("string at offset {offset} is not valid UTF-8")]
    InvalidUtf8 { offset: usize },
    #[error("unexpected null {what} at offset {offset}")]
    UnexpectedNull { offset: usize, what: &'static str },
    #[error("invalid value {value} for {what}")]
    InvalidValue { what: &'static str, value: i64 },
    #[error("{count} trailing bytes after the record")]
    TrailingBytes { count: usize },
}

/// Reads jute primitives from a borrowed frame.
#[derive(Debug, Clone)]
pub struct JuteReader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> JuteReader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        JuteReader { buf, pos: 0 }
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// Fails unless every byte has been consumed: a record with trailing bytes
    /// is a framing bug on one side or the other.
    pub fn finish(&self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(DecodeError::TrailingBytes { count }),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return Err(DecodeError::Truncated {
                offset: self.pos,
                needed: n - self.remaining(),
            });
        }
        let slice = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(slice)
    }

    pub fn read_i32(&mut self) -> Result<i32, DecodeError> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn read_i64(&mut self) -> Result<i64, DecodeError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }

    pub fn read_bool(&mut self) -> Result<bool, DecodeError> {
        Ok(self.take(1)?[0] != 0)
    }

    /// A buffer whose length may be -1 (null).
    pub fn read_opt_buffer(&mut self) -> Result<Option<&'a [u8]>, DecodeError> {
        let offset = self.pos;
        let len = self.read_i32()?;
        if len == -1 {
            return Ok(None);
        }
        if len < 0 {
            return Err(DecodeError::NegativeLength {
                offset,
                length: len,
            });
        }
        self.take(len as usize).map(Some)
    }

    /// A buffer where null is read as empty, as the Java server does for data.
    pub fn read_buffer(&mut self) -> Result<&'a [u8], DecodeError> {
        Ok(self.read_opt_buffer()?.unwrap_or(&[]))
    }

    pub fn read_opt_string(&mut self) -> Result<Option<String>, DecodeError> {
        let offset = self.pos;
        match self.read_opt_buffer()? {
            None => Ok(None),
            Some(bytes) => std::str::from_utf8(bytes)
                .map(|s| Some(s.to_owned()))
                .map_err(|_| DecodeError::InvalidUtf8 { offset }),
        }
    }

    /// A string that must be present.
    pub fn read_string(&mut self, what: &'static str) -> Result<String, DecodeError> {
        let offset = self.pos;
        self.read_opt_string()?
            .ok_or(DecodeError::UnexpectedNull { offset, what })
    }

    /// A vector count; -1 (null) reads as 0. The count is bounded by the bytes
    /// left, each item taking at least `min_item_size` bytes, so a forged count
    /// cannot reserve unbounded memory.
    pub fn read_vec_len(&mut self, min_item_size: usize) -> Result<usize, DecodeError> {
        let offset = self.pos;
        let count = self.read_i32()?;
        if count == -1 {
            return Ok(0);
        }
        if count < 0 {
            return Err(DecodeError::NegativeLength {
                offset,
                length: count,
            });
        }
        let count = count as usize;
        let needed = count.saturating_mul(min_item_size.max(1));
        if needed > self.remaining() {
            return Err(DecodeError::Truncated {
                offset: self.pos,
                needed: needed - self.remaining(),
            });
        }
        Ok(count)
    }
}

/// Writes jute primitives into a growable buffer.
#[derive(Debug, Default, Clone)]
pub struct JuteWriter {
    buf: Vec<u8>,
}

impl JuteWriter {
    pub fn new() -> Self {
        JuteWriter { buf: Vec::new() }
    }

    pub fn with_capacity(capacity: usize) -> Self {
        JuteWriter {
            buf: Vec::with_capacity(capacity),
        }
    }

    /// Starts a length-prefixed frame: four placeholder bytes that
    /// [`JuteWriter::finish_frame`] fills in.
    pub fn begin_frame() -> Self {
        JuteWriter {
            buf: vec![0, 0, 0, 0],
        }
    }

    /// Fills in the length prefix written by [`JuteWriter::begin_frame`].
    pub fn finish_frame(mut self) -> Vec<u8> {
        let len = (self.buf.len() - 4) as i32;
        self.buf[..4].copy_from_slice(&len.to_be_bytes());
        self.buf
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn into_inner(self) -> Vec<u8> {
        self.buf
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.buf
    }

    pub fn write_i32(&mut self, v: i32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub fn write_i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub fn write_bool(&mut self, v: bool) {
        self.buf.push(v as u8);
    }

    pub fn write_buffer(&mut self, v: &[u8]) {
        self.write_i32(v.len() as i32);
        self.buf.extend_from_slice(v);
    }

    pub fn write_opt_buffer(&mut self, v: Option<&[u8]>) {
        match v {
            None => self.write_i32(-1),
            Some(b) => self.write_buffer(b),
        }
    }

    pub fn write_string(&mut self, v: &str) {
        self.write_buffer(v.as_bytes());
    }

    pub fn write_opt_string(&mut self, v: Option<&str>) {
        self.write_opt_buffer(v.map(str::as_bytes));
    }

    pub fn write_vec_len(&mut self, len: usize) {
        self.write_i32(len as i32);
    }
}

/// A record that can be written and read in jute form.
pub trait Record: Sized {
    fn write(&self, w: &mut JuteWriter);
    fn read(r: &mut JuteReader<'_>) -> Result<Self, DecodeError>;

    /// Encodes into a fresh buffer (no length prefix).
    fn to_bytes(&self) -> Vec<u8> {
        let mut w = JuteWriter::new();
        self.write(&mut w);
        w.into_inner()
    }

    /// Decodes a whole buffer, rejecting trailing bytes.
    fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = JuteReader::new(bytes);
        let v = Self::read(&mut r)?;
        r.finish()?;
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primitives_round_trip() {
        let mut w = JuteWriter::new();
        w.write_i32(-7);
        w.write_i64(0x0102_0304_0506_0708);
        w.write_bool(true);
        w.write_string("/a/b");
        w.write_opt_buffer(None);
        let bytes = w.into_inner();
        let mut r = JuteReader::new(&bytes);
        assert_eq!(r.read_i32().unwrap(), -7);
        assert_eq!(r.read_i64().unwrap(), 0x0102_0304_0506_0708);
        assert!(r.read_bool().unwrap());
        assert_eq!(r.read_string("path").unwrap(), "/a/b");
        assert_eq!(r.read_opt_buffer().unwrap(), None);
        r.finish().unwrap();
    }

    #[test]
    fn forged_lengths_are_rejected_before_allocation() {
        let mut w = JuteWriter::new();
        w.write_i32(i32::MAX);
        let bytes = w.into_inner();
        assert!(matches!(
            JuteReader::new(&bytes).read_opt_buffer(),
            Err(DecodeError::Truncated { .. })
        ));
        assert!(matches!(
            JuteReader::new(&bytes).read_vec_len(4),
            Err(DecodeError::Truncated { .. })
        ));
        let mut w = JuteWriter::new();
        w.write_i32(-5);
        assert!(matches!(
            JuteReader::new(w.as_slice()).read_opt_buffer(),
            Err(DecodeError::NegativeLength { .. })
        ));
    }

    #[test]
    fn frames_carry_their_length() {
        let mut w = JuteWriter::begin_frame();
        w.write_i32(42);
        assert_eq!(w.finish_frame(), vec![0, 0, 0, 4, 0, 0, 0, 42]);
    }
}
