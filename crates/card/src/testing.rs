//! Deterministic helpers for tests and simulations of the card.

use core::convert::Infallible;

use rand_core::TryRng;

/// A predictable "random" source: 0, 1, 2, … Card randoms only need to differ per transaction
/// in tests; real cards use their TRNG.
#[derive(Clone, Debug)]
pub struct CountingRng(pub u32);

impl TryRng for CountingRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let v = self.0;
        self.0 = self.0.wrapping_add(1);
        Ok(v)
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(u64::from(self.try_next_u32()?))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        for b in dst {
            *b = self.try_next_u32()? as u8;
        }
        Ok(())
    }
}
