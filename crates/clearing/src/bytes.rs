//! Reading and writing the crate's binary encodings (upload batches, stored shadows): big-endian
//! integers, BCD times, short texts, record kinds — each failure naming its byte offset.

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
            0 => Ok(TapKind::Entry),
            1 => Ok(TapKind::Exit),
            2 => Ok(TapKind::Single),
            3 => Ok(TapKind::Load),
            _ => Err(Reader::error(offset, "unknown record kind")),
        }
    }
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
