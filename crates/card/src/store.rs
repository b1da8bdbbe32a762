use alloc::vec::Vec;

/// The card lost power during a write: what was written before stays, the rest never happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PowerLoss;

/// The card's non-volatile memory, as a secure element's EEPROM or flash offers it.
///
/// Writes land in call order. A write may be torn by a power loss: a prefix of its bytes lands
/// and [`PowerLoss`] is returned. Atomicity across several writes is the card's job
/// (its journal, see `journal.rs`), not the store's.
pub trait Store {
    /// The whole image.
    fn image(&self) -> &[u8];
    /// Writes `bytes` at `offset`. The card only writes inside the image.
    fn write(&mut self, offset: usize, bytes: &[u8]) -> Result<(), PowerLoss>;
}

/// A store in RAM: the image a card file holds, or what a test inspects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemStore {
    bytes: Vec<u8>,
}

impl MemStore {
    /// A store holding `bytes`.
    pub fn new(bytes: Vec<u8>) -> Self {
        MemStore { bytes }
    }

    /// The image, to save it.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

impl Store for MemStore {
    fn image(&self) -> &[u8] {
        &self.bytes
    }

    fn write(&mut self, offset: usize, bytes: &[u8]) -> Result<(), PowerLoss> {
        let end = offset + bytes.len();
        assert!(end <= self.bytes.len(), "card wrote outside its image");
        self.bytes[offset..end].copy_from_slice(bytes);
        Ok(())
    }
}

/// A store that loses power after a set number of writes, for tearing tests: write number
/// `writes_before_cut` (0-based) lands only its first `torn_prefix_len` bytes, and every later
/// write lands nothing.
#[derive(Clone, Debug)]
pub struct TearingStore {
    inner: MemStore,
    writes_before_cut: Option<usize>,
    torn_prefix_len: usize,
    writes_done: usize,
    cut: bool,
}

impl TearingStore {
    /// Wraps `inner`; with `None` it never cuts.
    pub fn new(inner: MemStore, writes_before_cut: Option<usize>, torn_prefix_len: usize) -> Self {
        TearingStore { inner, writes_before_cut, torn_prefix_len, writes_done: 0, cut: false }
    }

    /// Writes completed (or torn) so far.
    pub fn writes_done(&self) -> usize {
        self.writes_done
    }

    /// Whether the power was cut.
    pub fn was_cut(&self) -> bool {
        self.cut
    }

    /// The memory as the power cut left it.
    pub fn into_inner(self) -> MemStore {
        self.inner
    }
}

impl Store for TearingStore {
    fn image(&self) -> &[u8] {
        self.inner.image()
    }

    fn write(&mut self, offset: usize, bytes: &[u8]) -> Result<(), PowerLoss> {
        if self.cut {
            return Err(PowerLoss);
        }
        if Some(self.writes_done) == self.writes_before_cut {
            let landed = self.torn_prefix_len.min(bytes.len());
            self.inner.write(offset, &bytes[..landed])?;
            self.cut = true;
            self.writes_done += 1;
            return Err(PowerLoss);
        }
        self.writes_done += 1;
        self.inner.write(offset, bytes)
    }
}
