//! Atomic commits over a store whose writes can be torn, as a secure element's transaction
//! mechanism gives them.
//!
//! A commit writes, in this order: the journal body (every staged write: offset, length, bytes)
//! with its length, then the one-byte flag [`COMMITTED`], then each staged write in place, then
//! the flag back to zero. A single byte never tears, so at power-up the flag tells which side of
//! the commit point the card stopped on: flag clear, the old state is intact (a torn body is
//! ignored); flag set, the body is complete and [`recover`] applies it again (applying is
//! idempotent), then clears the flag.

use yitong_profile::Reader;

use crate::layout::{JOURNAL, JOURNAL_BODY_MAX, JOURNAL_ENTRY_OVERHEAD};
use crate::store::{PowerLoss, Store};

/// Flag value of a complete journal that is still to be applied.
const COMMITTED: u8 = 0xA5;

/// The writes of one transaction, staged until [`Journal::commit`].
pub struct Journal {
    body: [u8; JOURNAL_BODY_MAX],
    len: usize,
}

impl Journal {
    /// An empty transaction.
    pub fn new() -> Self {
        Journal { body: [0; JOURNAL_BODY_MAX], len: 0 }
    }

    /// Stages `bytes` to be written at `offset`.
    ///
    /// # Panics
    /// When the transaction outgrows the journal; `layout` asserts the largest one fits.
    pub fn stage(&mut self, offset: usize, bytes: &[u8]) {
        let end = self.len + JOURNAL_ENTRY_OVERHEAD + bytes.len();
        assert!(end <= JOURNAL_BODY_MAX, "transaction larger than the journal");
        let offset = u16::try_from(offset).expect("image offsets fit u16");
        let len = u16::try_from(bytes.len()).expect("staged writes are short");
        self.body[self.len..self.len + 2].copy_from_slice(&offset.to_be_bytes());
        self.body[self.len + 2..self.len + 4].copy_from_slice(&len.to_be_bytes());
        self.body[self.len + 4..end].copy_from_slice(bytes);
        self.len = end;
    }

    /// Makes every staged write durable, or none of them.
    pub fn commit<S: Store>(self, store: &mut S) -> Result<(), PowerLoss> {
        let mut framed = [0u8; 2 + JOURNAL_BODY_MAX];
        let len = u16::try_from(self.len).expect("journal body fits u16");
        framed[..2].copy_from_slice(&len.to_be_bytes());
        framed[2..2 + self.len].copy_from_slice(&self.body[..self.len]);
        store.write(JOURNAL + 1, &framed[..2 + self.len])?;
        store.write(JOURNAL, &[COMMITTED])?;
        apply(store, &self.body[..self.len])?;
        store.write(JOURNAL, &[0])
    }
}

impl Default for Journal {
    fn default() -> Self {
        Self::new()
    }
}

/// Why [`recover`] could not bring the image to a consistent state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecoverError {
    /// Power was lost again while applying the journal; the next power-up tries again.
    PowerLoss,
    /// The journal area holds bytes this code never writes: the image is damaged.
    Corrupt,
}

impl From<PowerLoss> for RecoverError {
    fn from(_: PowerLoss) -> Self {
        RecoverError::PowerLoss
    }
}

/// Finishes a commit that a power loss interrupted after its commit point. Run at power-up.
pub fn recover<S: Store>(store: &mut S) -> Result<(), RecoverError> {
    let image = store.image();
    match image.get(JOURNAL) {
        Some(0) => return Ok(()),
        Some(&COMMITTED) => {}
        _ => return Err(RecoverError::Corrupt),
    }
    let mut r = Reader::new(image.get(JOURNAL + 1..).ok_or(RecoverError::Corrupt)?);
    let len = usize::from(r.u16().map_err(|_| RecoverError::Corrupt)?);
    if len > JOURNAL_BODY_MAX {
        return Err(RecoverError::Corrupt);
    }
    let mut body = [0u8; JOURNAL_BODY_MAX];
    body[..len].copy_from_slice(r.take(len).map_err(|_| RecoverError::Corrupt)?);
    let body = &body[..len];
    if !entries_fit(body, JOURNAL) {
        return Err(RecoverError::Corrupt);
    }
    apply(store, body)?;
    store.write(JOURNAL, &[0])?;
    Ok(())
}

/// Whether every entry of `body` parses and writes below `limit` (never into the journal).
fn entries_fit(body: &[u8], limit: usize) -> bool {
    let mut r = Reader::new(body);
    while !r.rest().is_empty() {
        let (Ok(offset), Ok(len)) = (r.u16(), r.u16()) else {
            return false;
        };
        if r.take(usize::from(len)).is_err() || usize::from(offset) + usize::from(len) > limit {
            return false;
        }
    }
    true
}

fn apply<S: Store>(store: &mut S, body: &[u8]) -> Result<(), PowerLoss> {
    debug_assert!(entries_fit(body, JOURNAL));
    let mut r = Reader::new(body);
    while let (Ok(offset), Ok(len)) = (r.u16(), r.u16()) {
        let Ok(bytes) = r.take(usize::from(len)) else {
            break;
        };
        store.write(usize::from(offset), bytes)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use alloc::vec;

    use super::*;
    use crate::layout::IMAGE_LEN;
    use crate::store::{MemStore, TearingStore};

    fn staged() -> Journal {
        let mut j = Journal::new();
        j.stage(10, &[1, 2, 3]);
        j.stage(100, &[4; 20]);
        j
    }

    #[test]
    fn every_cut_leaves_old_or_new_state_after_recovery() {
        let old = MemStore::new(vec![0; IMAGE_LEN]);
        let mut new = old.clone();
        staged().commit(&mut new).unwrap();
        assert_eq!(&new.image()[10..13], &[1, 2, 3]);
        for cut in 0..5 {
            for prefix in [0, 1, 3] {
                let mut s = TearingStore::new(old.clone(), Some(cut), prefix);
                assert_eq!(staged().commit(&mut s), Err(PowerLoss));
                let mut after = s.into_inner();
                recover(&mut after).unwrap();
                let data = |s: &MemStore| (s.image()[10..13].to_vec(), s.image()[100..120].to_vec());
                let got = data(&after);
                assert!(got == data(&old) || got == data(&new), "cut {cut} prefix {prefix}: {got:?}");
                // Past the flag write (write 1) the new state must win.
                if cut >= 2 || (cut == 1 && prefix > 0) {
                    assert_eq!(got, data(&new));
                }
                assert_eq!(after.image()[JOURNAL], 0);
            }
        }
    }

    #[test]
    fn damaged_journal_is_reported_not_applied() {
        let mut s = MemStore::new(vec![0; IMAGE_LEN]);
        s.write(JOURNAL, &[0x17]).unwrap();
        assert_eq!(recover(&mut s), Err(RecoverError::Corrupt));
        // A committed entry pointing into the journal itself.
        let off = u16::try_from(JOURNAL).unwrap().to_be_bytes();
        s.write(JOURNAL, &[COMMITTED, 0, 5, off[0], off[1], 0, 1, 9]).unwrap();
        assert_eq!(recover(&mut s), Err(RecoverError::Corrupt));
        s.write(JOURNAL + 1, &[0xFF, 0xFF]).unwrap();
        assert_eq!(recover(&mut s), Err(RecoverError::Corrupt));
    }
}
