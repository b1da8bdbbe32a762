//! A shadow's compact binary form, for storage: what its serde form holds (the card, its
//! transactions, its rejected records' identities), in about an eighth of the bytes of JSON,
//! read back through the same checks.
//!
//! | bytes | field |
//! |---|---|
//! | 4 | magic `YTS2` |
//! | 8 + 10 | card: issuer ID, serial |
//! | 4 + about 32 n | transactions: count, then each ([`Entry`]'s `pack_into`) |
//! | 4 + 42 n | rejected records: count, then each identity and 1 byte, whether it was a TAC failure |
//!
//! The first version, `YTS1`, is still read (written until 7 December 2026): the same but for
//! 50 bytes a transaction, every number at its full width and the time received in BCD. The
//! second writes a card of four transactions in about 160 bytes instead of 230; the back office
//! writes a card's whole shadow into its journal each time a group names it, and into its row
//! at a fold.

use super::book::{StoredRejection, StoredShadow};
use super::entry::{CardId, Entry, RejectedKey};
use super::{Shadow, ShadowError};
use crate::bytes::{BytesError, Reader};

/// The packed form's first bytes.
pub const PACKED_SHADOW_MAGIC: &[u8; 4] = b"YTS2";
/// The first version's (read, no longer written).
const PACKED_SHADOW_MAGIC_V1: &[u8; 4] = b"YTS1";
/// The fewest bytes a transaction packs into: a version's head, counter, time, terminal ID and
/// number, type, then (version 2) four numbers of a byte at least.
const ENTRY_BYTES_MIN: [usize; 2] = [50, 1 + 2 + 7 + 6 + 4 + 1 + 4];

impl From<BytesError> for ShadowError {
    fn from(error: BytesError) -> Self {
        ShadowError::Packed { offset: error.offset, why: error.why }
    }
}

impl Shadow {
    /// The shadow in its packed form.
    pub fn pack(&self) -> Vec<u8> {
        self.pack_as(PACKED_SHADOW_MAGIC, Entry::pack_into)
    }

    /// The shadow in the first version's form, as shadows stored before were.
    #[cfg(test)]
    pub(crate) fn pack_v1(&self) -> Vec<u8> {
        self.pack_as(PACKED_SHADOW_MAGIC_V1, Entry::pack_v1_into)
    }

    /// The layout above, under `magic`, each transaction written by `entry`.
    fn pack_as(&self, magic: &[u8; 4], entry: fn(&Entry, &mut Vec<u8>)) -> Vec<u8> {
        let (entries, rejected) = self.inputs();
        let mut out = Vec::with_capacity(34 + 36 * entries.len() + 42 * rejected.len());
        out.extend_from_slice(magic);
        let card = self.card();
        out.extend_from_slice(&card.issuer_id);
        out.extend_from_slice(&card.card_serial);
        out.extend_from_slice(&count(entries.len()).to_be_bytes());
        for e in entries {
            entry(e, &mut out);
        }
        out.extend_from_slice(&count(rejected.len()).to_be_bytes());
        for (key, &tac_failure) in rejected {
            key.pack_into(&mut out);
            out.push(u8::from(tac_failure));
        }
        out
    }

    /// Reads a packed shadow (either version), with the checks a stored shadow passes.
    pub fn unpack(bytes: &[u8]) -> Result<Shadow, ShadowError> {
        let mut r = Reader::new(bytes);
        let version = match r.take(4)? {
            magic if magic == PACKED_SHADOW_MAGIC => 2,
            magic if magic == PACKED_SHADOW_MAGIC_V1 => 1,
            _ => return Err(Reader::error(0, "not a packed shadow (magic YTS2 or YTS1)").into()),
        };
        let card = CardId { issuer_id: r.array()?, card_serial: r.array()? };
        let entries = r.u32()?;
        // A count beyond the bytes there ends early, not in memory.
        let most = bytes.len() / ENTRY_BYTES_MIN[version - 1];
        let mut transactions = Vec::with_capacity(usize::try_from(entries).unwrap_or(0).min(most));
        for _ in 0..entries {
            transactions.push(match version {
                1 => Entry::unpack_v1(&mut r)?,
                _ => Entry::unpack(&mut r)?,
            });
        }
        let rejections = r.u32()?;
        let mut rejected = Vec::with_capacity(usize::try_from(rejections).unwrap_or(0).min(bytes.len() / 42));
        for _ in 0..rejections {
            let record = RejectedKey::unpack(&mut r)?;
            let offset = r.offset();
            let tac_failure = match r.u8()? {
                0 => false,
                1 => true,
                _ => return Err(Reader::error(offset, "not a yes or no").into()),
            };
            rejected.push(StoredRejection { record, tac_failure });
        }
        r.finish("rejected record")?;
        Shadow::try_from(StoredShadow { card, transactions, rejected })
    }
}

fn count(n: usize) -> u32 {
    // A card's records number far fewer than 2³²; saturating keeps the function total.
    u32::try_from(n).unwrap_or(u32::MAX)
}
