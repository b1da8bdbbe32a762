//! Reading and writing the crate's binary encodings (upload batches, stored shadows): big-endian
//! integers, LEB128 ones (signed ones zigzag-mapped first), BCD times, short texts, record kinds —
//! each failure naming its byte offset.

use yitong_profile::DateTime;
use yitong_record::TapKind;

/// Bytes that do not read: where, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct BytesError {
    pub(crate) offset: usize,
    pub(crate) why: String,
}

/// A cursor over encoded bytes: `yitong_profile`'s reader, with the offset every error names.
pub(crate) struct Reader<'a> {
    inner: yitong_profile::Reader<'a>,
    length: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { inner: yitong_profile::Reader::new(bytes), length: bytes.len() }
    }

    /// Where the next byte is read.
    pub(crate) fn offset(&self) -> usize {
        self.length - self.inner.rest().len()
    }

    /// An error at `offset`.
    pub(crate) fn error(offset: usize, why: &str) -> BytesError {
        BytesError { offset, why: why.to_owned() }
    }

    /// An error unless every byte was read.
    pub(crate) fn finish(&self, what: &str) -> Result<(), BytesError> {
        match self.inner.rest().is_empty() {
            true => Ok(()),
            false => Err(Reader::error(self.offset(), &format!("bytes after the last {what}"))),
        }
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], BytesError> {
        let offset = self.offset();
        self.inner.take(n).map_err(|_| BytesError { offset, why: format!("ends early ({n} bytes wanted)") })
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], BytesError> {
        let offset = self.offset();
        self.inner.array().map_err(|_| BytesError { offset, why: format!("ends early ({N} bytes wanted)") })
    }

    pub(crate) fn u8(&mut self) -> Result<u8, BytesError> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, BytesError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, BytesError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub(crate) fn i64(&mut self) -> Result<i64, BytesError> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    /// An unsigned LEB128 number: seven bits a byte, least significant first, the high bit set on
    /// every byte but the last (at most ten bytes, 64 bits). A number written longer than it needs
    /// (`80 00` for 0) reads too: [`push_varint`] never writes one, and nothing compares the bytes
    /// of two encodings of one value.
    pub(crate) fn varint(&mut self) -> Result<u64, BytesError> {
        let offset = self.offset();
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.u8()?;
            let bits = u64::from(byte & 0x7F);
            if shift == 63 && bits > 1 {
                break;
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(Reader::error(offset, "a number over 64 bits"))
    }

    /// A signed number as [`push_signed`] wrote it.
    pub(crate) fn signed(&mut self) -> Result<i64, BytesError> {
        let zigzag = self.varint()?;
        Ok((zigzag >> 1) as i64 ^ -((zigzag & 1) as i64))
    }

    /// A length byte, then that many bytes of UTF-8.
    pub(crate) fn text(&mut self) -> Result<String, BytesError> {
        let length = usize::from(self.u8()?);
        let offset = self.offset();
        let bytes = self.take(length)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| Reader::error(offset, "text is not UTF-8"))
    }

    /// Seven bytes of BCD, `YYYYMMDDhhmmss`.
    pub(crate) fn time(&mut self) -> Result<DateTime, BytesError> {
        let offset = self.offset();
        DateTime::from_bcd7(&self.array::<7>()?).map_err(|_| Reader::error(offset, "not a BCD date and time"))
    }

    /// A record kind's byte ([`kind_byte`]).
    pub(crate) fn kind(&mut self) -> Result<TapKind, BytesError> {
        let offset = self.offset();
        match self.u8()? {
            byte @ 0..=3 => Ok(kind_of(byte)),
            _ => Err(Reader::error(offset, "unknown record kind")),
        }
    }
}

/// Appends `value` in unsigned LEB128 ([`Reader::varint`]).
pub(crate) fn push_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value & 0x7F) as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Appends `value` zigzag-mapped (0, −1, 1, −2, … as 0, 1, 2, 3, …: small either way) in LEB128.
pub(crate) fn push_signed(out: &mut Vec<u8>, value: i64) {
    push_varint(out, ((value << 1) ^ (value >> 63)) as u64);
}

/// A record kind as a byte: 0 entry, 1 exit, 2 single, 3 load.
pub(crate) fn kind_byte(kind: TapKind) -> u8 {
    match kind {
        TapKind::Entry => 0,
        TapKind::Exit => 1,
        TapKind::Single => 2,
        TapKind::Load => 3,
    }
}

/// The record kind of [`kind_byte`]'s two low bits (the others ignored).
pub(crate) fn kind_of(bits: u8) -> TapKind {
    match bits & 3 {
        0 => TapKind::Entry,
        1 => TapKind::Exit,
        2 => TapKind::Single,
        _ => TapKind::Load,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(value: u64) -> Vec<u8> {
        let mut out = Vec::new();
        push_varint(&mut out, value);
        out
    }

    fn signed(value: i64) -> Vec<u8> {
        let mut out = Vec::new();
        push_signed(&mut out, value);
        out
    }

    #[test]
    fn leb128_numbers_as_the_format_defines_them() {
        // The examples of the LEB128 definition (DWARF 5, section 7.6).
        assert_eq!(varint(2), [0x02]);
        assert_eq!(varint(127), [0x7F]);
        assert_eq!(varint(128), [0x80, 0x01]);
        assert_eq!(varint(129), [0x81, 0x01]);
        assert_eq!(varint(12_857), [0xB9, 0x64]);
        assert_eq!(varint(u64::MAX), [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]);
        // Zigzag: 0, −1, 1, −2 as 0, 1, 2, 3.
        assert_eq!([signed(0), signed(-1), signed(1), signed(-2)], [[0], [1], [2], [3]]);
        assert_eq!(signed(-64), [0x7F]);
        assert_eq!(signed(64), [0x80, 0x01]);
        for value in [0, 1, 127, 128, 300, 16_383, 16_384, u64::from(u32::MAX), u64::MAX - 1, u64::MAX] {
            let bytes = varint(value);
            let mut r = Reader::new(&bytes);
            assert_eq!(r.varint(), Ok(value));
            assert_eq!(r.finish("number"), Ok(()));
        }
        for value in [0, -1, 1, 3_000, -3_000, i64::from(i32::MIN), i64::MAX, i64::MIN] {
            let bytes = signed(value);
            assert_eq!(Reader::new(&bytes).signed(), Ok(value), "{value}");
        }
    }

    #[test]
    fn a_number_cut_short_or_over_64_bits_does_not_read() {
        let mut r = Reader::new(&[0x05, 0x80]);
        assert_eq!(r.varint(), Ok(5));
        assert_eq!(r.varint().map_err(|e| e.offset), Err(2), "the second ends early");
        let eleven = [0xFF; 10].iter().copied().chain([0x01]).collect::<Vec<u8>>();
        assert_eq!(Reader::new(&eleven).varint(), Err(Reader::error(0, "a number over 64 bits")));
        let bit_65 = [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x02];
        assert_eq!(Reader::new(&bit_65).varint(), Err(Reader::error(0, "a number over 64 bits")));
        // A tenth byte that says another follows: over 64 bits, even with its one bit allowed.
        let tenth_goes_on = [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x81, 0x00];
        assert_eq!(Reader::new(&tenth_goes_on).varint(), Err(Reader::error(0, "a number over 64 bits")));
    }
}
