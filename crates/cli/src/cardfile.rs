//! Card images on disk (the "SE image"): the checksummed file around the card's memory, locked
//! opening for a transaction, and atomic replacement of files.
//!
//! File layout (format 1), all integers big-endian:
//!
//! | offset | length | field |
//! |---|---|---|
//! | 0 | 4 | magic `YTCF` |
//! | 4 | 1 | format, 1 |
//! | 5 | 3 | zero |
//! | 8 | 4 | image length *n* |
//! | 12 | *n* | the card's image (starts `YTSE`, its own layout version) |
//! | 12 + *n* | 32 | SHA-256 of bytes 0 to 12 + *n* |
//!
//! A bare image of [`IMAGE_LEN`] bytes (what `yitong` wrote before format 1) is still read, and
//! is written in format 1 at its next change.

use std::path::{Path, PathBuf};

use anyhow::Context;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sha2::{Digest, Sha256};
use yitong_card::{Card, MemStore, Store, IMAGE_LEN};

use crate::filelock::FileLock;

/// A card powered on from a file, with a system-seeded random source.
pub type FileCard = Card<MemStore, ChaCha20Rng>;

const FILE_MAGIC: [u8; 4] = *b"YTCF";
const FILE_FORMAT: u8 = 1;
const HEADER_LEN: usize = 12;
const CHECKSUM_LEN: usize = 32;
/// The largest image a file may announce: bounds what a damaged length field can ask for.
const IMAGE_LEN_MAX: usize = 64 * 1024;
const _: () = assert!(IMAGE_LEN <= IMAGE_LEN_MAX);

/// Why a file's bytes are not a card image that can be handed to the card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageFileError {
    /// Neither a card image file nor a bare image.
    NotAnImage,
    /// A card image file whose bytes do not add up: torn, truncated, or changed on disk.
    Damaged(&'static str),
    /// A card image file of a format this program does not read (a later one, or damage).
    UnknownFormat(u8),
}

impl std::fmt::Display for ImageFileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ImageFileError::NotAnImage => f.write_str("not a Yitong card image"),
            ImageFileError::Damaged(why) => write!(f, "card image damaged ({why})"),
            ImageFileError::UnknownFormat(v) => {
                write!(f, "card image file format {v}; this yitong reads format {FILE_FORMAT}")
            }
        }
    }
}

impl std::error::Error for ImageFileError {}

/// Wraps the card's image in a format-1 file.
pub fn encode(image: &[u8]) -> Vec<u8> {
    assert!(image.len() <= IMAGE_LEN_MAX, "card images are {IMAGE_LEN} bytes");
    let length = u32::try_from(image.len()).expect("bounded by IMAGE_LEN_MAX");
    let mut file = Vec::with_capacity(HEADER_LEN + image.len() + CHECKSUM_LEN);
    file.extend_from_slice(&FILE_MAGIC);
    file.extend_from_slice(&[FILE_FORMAT, 0, 0, 0]);
    file.extend_from_slice(&length.to_be_bytes());
    file.extend_from_slice(image);
    let checksum = Sha256::digest(&file);
    file.extend_from_slice(&checksum);
    file
}

/// The card's image inside a file's bytes, checked against the file's checksum.
pub fn decode(bytes: &[u8]) -> Result<&[u8], ImageFileError> {
    let Some(header) = bytes.get(..HEADER_LEN).filter(|h| h[..4] == FILE_MAGIC) else {
        // The card checks a bare image's own header when it powers on.
        return if bytes.len() == IMAGE_LEN { Ok(bytes) } else { Err(ImageFileError::NotAnImage) };
    };
    if header[4] != FILE_FORMAT {
        return Err(ImageFileError::UnknownFormat(header[4]));
    }
    let length = u32::from_be_bytes([header[8], header[9], header[10], header[11]]);
    let length =
        usize::try_from(length).ok().filter(|n| *n <= IMAGE_LEN_MAX).ok_or(ImageFileError::Damaged("length"))?;
    let body_end = HEADER_LEN + length;
    if bytes.len() < body_end + CHECKSUM_LEN {
        return Err(ImageFileError::Damaged("truncated"));
    }
    if bytes.len() > body_end + CHECKSUM_LEN {
        return Err(ImageFileError::Damaged("bytes past its end"));
    }
    let (body, checksum) = bytes.split_at(body_end);
    if header[5..8] != [0, 0, 0] || Sha256::digest(body).as_slice() != checksum {
        return Err(ImageFileError::Damaged("checksum mismatch"));
    }
    Ok(&body[HEADER_LEN..])
}

/// A random source seeded by the operating system, for card randoms.
pub fn system_rng() -> anyhow::Result<ChaCha20Rng> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("no system randomness: {e}"))?;
    Ok(ChaCha20Rng::from_seed(seed))
}

/// Reads and powers on the card image at `path` (finishing any interrupted commit in memory),
/// without a lock: for reading only, since files are replaced whole by rename.
pub fn open(path: &Path) -> anyhow::Result<FileCard> {
    Ok(read(path)?.1)
}

/// Reads `path`: its image as stored, and the card powered on from it.
fn read(path: &Path) -> anyhow::Result<(Vec<u8>, FileCard)> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read card image {}", path.display()))?;
    let image = decode(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?.to_vec();
    let card = Card::power_on(MemStore::new(image.clone()), system_rng()?)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok((image, card))
}

/// A card image held for a transaction: locked from opening to saving, so that no other
/// process reads or writes it in between.
#[derive(Debug)]
pub struct LockedImage {
    path: PathBuf,
    /// The image as read; saving compares against it.
    stored: Vec<u8>,
    _lock: FileLock,
}

/// Locks the card image at `path` (waiting for another process's transaction), reads it and
/// powers the card on.
pub fn open_locked(path: &Path) -> anyhow::Result<(LockedImage, FileCard)> {
    let lock = FileLock::acquire(path)?;
    let (stored, card) = read(path)?;
    Ok((LockedImage { path: path.to_path_buf(), stored, _lock: lock }, card))
}

impl LockedImage {
    /// Writes the card's image if the transaction changed it; an untouched card is not written
    /// back, so a failed transaction leaves the file as it found it.
    pub fn save_if_changed<S: Store, R: rand_core::Rng>(&mut self, card: &Card<S, R>) -> anyhow::Result<()> {
        let image = card.store().image();
        if image != self.stored.as_slice() {
            write_image(&self.path, image)?;
            self.stored.clear();
            self.stored.extend_from_slice(image);
        }
        Ok(())
    }
}

/// Writes a card's image to `path` in the checksummed file format.
pub fn write_image(path: &Path, image: &[u8]) -> anyhow::Result<()> {
    write_atomically(path, &encode(image))
}

/// Writes `bytes` to `path` so that a crash or a parallel reader sees the old file or the new
/// one, never half of one: a temporary file of a unique name in the same directory, fsync,
/// rename over `path`, fsync of the directory (which makes the rename itself durable).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    Ok(yitong_platform::files::write_atomically(path, bytes)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A format-1 file around the 3-byte "image" `abc`, its checksum from coreutils:
    /// `printf 'YTCF\x01\x00\x00\x00\x00\x00\x00\x03abc' | sha256sum`.
    const ABC_FILE_HEX: &str = concat!(
        "59544346",
        "01000000",
        "00000003",
        "616263",
        "ab856630ccca7b8504189c155cd0a58f11d948f72ef5409c031b5c9c2101d035"
    );

    #[test]
    fn file_layout_and_checksum_match_an_independent_sha256() {
        assert_eq!(hex::encode(encode(b"abc")), ABC_FILE_HEX);
        assert_eq!(decode(&hex::decode(ABC_FILE_HEX).unwrap()), Ok(&b"abc"[..]));
    }

    #[test]
    fn every_flipped_byte_is_refused_as_damaged() {
        let image: Vec<u8> = (0..IMAGE_LEN).map(|i| i as u8).collect();
        let file = encode(&image);
        assert_eq!(decode(&file), Ok(&image[..]));
        for i in 0..file.len() {
            let mut bad = file.clone();
            bad[i] ^= 0x01;
            let got = decode(&bad);
            match i {
                0..=3 => assert_eq!(got, Err(ImageFileError::NotAnImage), "byte {i}"),
                4 => assert_eq!(got, Err(ImageFileError::UnknownFormat(0)), "byte {i}"),
                // The length field: the file no longer ends where its header says.
                8..=11 => assert!(matches!(got, Err(ImageFileError::Damaged(_))), "byte {i}: {got:?}"),
                _ => assert_eq!(got, Err(ImageFileError::Damaged("checksum mismatch")), "byte {i}"),
            }
        }
        assert!(decode(&file).is_ok(), "the flips were on copies");
    }

    #[test]
    fn torn_and_foreign_files_are_told_apart() {
        let image = vec![7u8; IMAGE_LEN];
        let file = encode(&image);
        assert_eq!(decode(&file[..file.len() - 1]), Err(ImageFileError::Damaged("truncated")));
        assert_eq!(decode(&file[..HEADER_LEN]), Err(ImageFileError::Damaged("truncated")));
        assert_eq!(decode(&[file.as_slice(), b"x"].concat()), Err(ImageFileError::Damaged("bytes past its end")));
        assert_eq!(decode(b"not a card"), Err(ImageFileError::NotAnImage));
        assert_eq!(decode(b""), Err(ImageFileError::NotAnImage));
        // A bare image as older versions wrote it goes to the card, which checks its header.
        assert_eq!(decode(&image), Ok(&image[..]));
        assert_eq!(ImageFileError::Damaged("checksum mismatch").to_string(), "card image damaged (checksum mismatch)");
    }

    #[test]
    fn atomic_writes_leave_no_temporary_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("card.se");
        write_image(&path, b"abc").unwrap();
        write_image(&path, b"abcd").unwrap();
        assert_eq!(decode(&std::fs::read(&path).unwrap()), Ok(&b"abcd"[..]));
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["card.se"]);
    }
}
