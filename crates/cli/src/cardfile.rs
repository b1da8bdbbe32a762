//! Card images on disk (the "SE image"): read, power on, save atomically.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use yitong_card::{Card, MemStore, Store};

/// A card powered on from a file, with a system-seeded random source.
pub type FileCard = Card<MemStore, ChaCha20Rng>;

/// A random source seeded by the operating system, for card randoms.
pub fn system_rng() -> anyhow::Result<ChaCha20Rng> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("no system randomness: {e}"))?;
    Ok(ChaCha20Rng::from_seed(seed))
}

/// Reads and powers on the card image at `path` (finishing any interrupted commit).
pub fn open(path: &Path) -> anyhow::Result<FileCard> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read card image {}", path.display()))?;
    Card::power_on(MemStore::new(bytes), system_rng()?).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// Writes `bytes` to `path` through a temporary file and a rename, so a crash leaves the old or
/// the new file, never half of one.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().with_context(|| format!("{} is not a file path", path.display()))?;
    let tmp = dir.join(format!(".{}.tmp", name.to_string_lossy()));
    let mut f = std::fs::File::create(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))?;
    Ok(())
}

/// Saves the card's image to `path`.
pub fn save<S: Store, R: rand_core::Rng>(path: &Path, card: &Card<S, R>) -> anyhow::Result<()> {
    write_atomically(path, card.store().image())
}
