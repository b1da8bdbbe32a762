/// The cipher family a card announces in the algorithm ID byte of INITIALIZE's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// Two-key 3DES card keys, single-DES session keys and MACs (algorithm ID `00`).
    Des,
    /// SM4 card keys, session keys and MACs (algorithm ID `04`, profile choice).
    Sm4,
}

/// An algorithm ID byte this crate does not implement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownAlgorithm(pub u8);

impl Algorithm {
    /// The algorithm ID byte sent in INITIALIZE FOR LOAD / PURCHASE answers.
    pub const fn id(self) -> u8 {
        match self {
            Algorithm::Des => 0x00,
            Algorithm::Sm4 => 0x04,
        }
    }

    /// The algorithm announced by an algorithm ID byte.
    pub const fn from_id(id: u8) -> Result<Self, UnknownAlgorithm> {
        match id {
            0x00 => Ok(Algorithm::Des),
            0x04 => Ok(Algorithm::Sm4),
            other => Err(UnknownAlgorithm(other)),
        }
    }
}
