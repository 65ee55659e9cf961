//! Little helpers to read and write the primitive encodings of MS-TDS 2.2.5: little-endian
//! integers, B_VARCHAR/US_VARCHAR UTF-16 strings.

/// A bounds-checked reader over a message payload. Every failure names what was being read,
/// so a malformed request produces a message a person can act on.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

/// A malformed client message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed TDS message: {0}")]
pub struct DecodeError(pub String);

pub type DecodeResult<T> = Result<T, DecodeError>;

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn bytes(&mut self, n: usize, what: &str) -> DecodeResult<&'a [u8]> {
        if self.remaining() < n {
            return Err(DecodeError(format!(
                "{what}: needs {n} bytes at offset {}, only {} left",
                self.pos,
                self.remaining()
            )));
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    pub fn skip(&mut self, n: usize, what: &str) -> DecodeResult<()> {
        self.bytes(n, what).map(|_| ())
    }

    pub fn u8(&mut self, what: &str) -> DecodeResult<u8> {
        Ok(self.bytes(1, what)?[0])
    }

    pub fn u16(&mut self, what: &str) -> DecodeResult<u16> {
        let b = self.bytes(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    pub fn u32(&mut self, what: &str) -> DecodeResult<u32> {
        let b = self.bytes(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn u64(&mut self, what: &str) -> DecodeResult<u64> {
        let b = self.bytes(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    /// `n` UTF-16LE code units.
    pub fn utf16(&mut self, chars: usize, what: &str) -> DecodeResult<String> {
        let b = self.bytes(chars * 2, what)?;
        utf16_to_string(b, what)
    }

    /// B_VARCHAR: a one-byte character count and UTF-16LE text.
    pub fn b_varchar(&mut self, what: &str) -> DecodeResult<String> {
        let n = self.u8(what)? as usize;
        self.utf16(n, what)
    }
}

/// Decodes UTF-16LE bytes.
pub fn utf16_to_string(b: &[u8], what: &str) -> DecodeResult<String> {
    if !b.len().is_multiple_of(2) {
        return Err(DecodeError(format!(
            "{what}: odd UTF-16 byte length {}",
            b.len()
        )));
    }
    let units: Vec<u16> = b
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16(&units).map_err(|_| DecodeError(format!("{what}: invalid UTF-16 text")))
}

pub fn put_utf16(out: &mut Vec<u8>, s: &str) {
    for unit in s.encode_utf16() {
        out.extend_from_slice(&unit.to_le_bytes());
    }
}

/// B_VARCHAR; text longer than 255 UTF-16 units is cut (server and procedure names never are).
pub fn put_b_varchar(out: &mut Vec<u8>, s: &str) {
    let units: Vec<u16> = s.encode_utf16().take(255).collect();
    out.push(units.len() as u8);
    for unit in units {
        out.extend_from_slice(&unit.to_le_bytes());
    }
}

/// US_VARCHAR; text longer than 65535 UTF-16 units is cut.
pub fn put_us_varchar(out: &mut Vec<u8>, s: &str) {
    let units: Vec<u16> = s.encode_utf16().take(u16::MAX as usize).collect();
    out.extend_from_slice(&(units.len() as u16).to_le_bytes());
    for unit in units {
        out.extend_from_slice(&unit.to_le_bytes());
    }
}
