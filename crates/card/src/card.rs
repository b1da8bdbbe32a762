use alloc::vec::Vec;

use rand_core::Rng;
use yitong_crypto::SessionKey;
use yitong_profile::apdu::Command;
use yitong_profile::files::{TRANSIT_RECORD_LEN, TRIP_LOG_RECORD_LEN};
use yitong_profile::StatusWord;

use crate::error::CardError;
use crate::journal::{self, Journal, RecoverError};
use crate::state::{self, ImageError, Lock, Purse};
use crate::store::{PowerLoss, Store};

/// Why a card image cannot start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PowerOnError {
    /// The image is not usable.
    Image(ImageError),
    /// Power was lost again while finishing an interrupted commit.
    PowerLoss,
}

impl core::fmt::Display for PowerOnError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            PowerOnError::Image(e) => e.fmt(f),
            PowerOnError::PowerLoss => write!(f, "power lost while recovering the last commit"),
        }
    }
}

/// What the terminal last selected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Selected {
    /// Nothing, or the MF.
    None,
    /// The PPSE directory.
    Ppse,
    /// The e-purse ADF.
    App,
}

/// A load between INITIALIZE FOR LOAD and CREDIT FOR LOAD.
#[derive(Clone)]
pub(crate) struct LoadPending {
    pub amount_fen: u32,
    pub terminal_id: [u8; 6],
    pub session_key: SessionKey,
    pub online_counter: u16,
}

/// A purchase between INITIALIZE and DEBIT, with the composite-purchase cache.
#[derive(Clone, Copy)]
pub(crate) struct PurchasePending {
    pub capp: bool,
    pub amount_fen: u32,
    pub terminal_id: [u8; 6],
    pub card_random: [u8; 4],
    pub offline_counter: u16,
    /// Cached EF1A update: record number and bytes.
    pub transit: Option<(u8, [u8; TRANSIT_RECORD_LEN])>,
    /// Cached EF1E append.
    pub trip_log: Option<[u8; TRIP_LOG_RECORD_LEN]>,
}

/// The transaction under way, kept in RAM: a power loss or any command other than its
/// continuation drops it.
#[derive(Clone, Default)]
pub(crate) enum Pending {
    #[default]
    None,
    Load(LoadPending),
    Purchase(PurchasePending),
    /// GET CHALLENGE's answer, good for the next command only (APPLICATION BLOCK / UNBLOCK).
    Challenge([u8; 4]),
}

/// An answer: response data and status word.
pub(crate) struct Reply {
    pub data: Vec<u8>,
    pub sw: StatusWord,
}

impl Reply {
    pub fn ok(data: &[u8]) -> Self {
        Reply { data: data.to_vec(), sw: StatusWord::OK }
    }
}

/// How a command failed: a status word, or no answer at all.
pub(crate) enum Failure {
    Refused(CardError),
    PowerLoss,
}

impl From<CardError> for Failure {
    fn from(e: CardError) -> Self {
        Failure::Refused(e)
    }
}

impl From<PowerLoss> for Failure {
    fn from(_: PowerLoss) -> Self {
        Failure::PowerLoss
    }
}

/// The e-purse application: feed it command APDUs with [`Card::process`], read the answers.
///
/// Call order: [`Card::power_on`] over a store (it finishes any commit a power loss interrupted),
/// then any number of [`Card::process`] calls. After [`PowerLoss`] the card answers nothing more:
/// power it on again from its store, as a phone does when it comes back to the reader.
pub struct Card<S, R> {
    store: S,
    rng: R,
    pub(crate) selected: Selected,
    pending: Pending,
    powered: bool,
}

impl<S: Store, R: Rng> Card<S, R> {
    /// Starts the card on `store`, with `rng` for card randoms.
    pub fn power_on(mut store: S, rng: R) -> Result<Self, PowerOnError> {
        state::validate(store.image()).map_err(PowerOnError::Image)?;
        match journal::recover(&mut store) {
            Ok(()) => {}
            Err(RecoverError::PowerLoss) => return Err(PowerOnError::PowerLoss),
            Err(RecoverError::Corrupt) => return Err(PowerOnError::Image(ImageError::Corrupt("journal"))),
        }
        // Recovery wrote what had been committed; check the result as well.
        state::validate(store.image()).map_err(PowerOnError::Image)?;
        Ok(Card { store, rng, selected: Selected::None, pending: Pending::None, powered: true })
    }

    /// A power cycle (or reset) in the field: RAM state is lost, any interrupted commit is
    /// finished, and the card answers again.
    pub fn reset(&mut self) -> Result<(), PowerOnError> {
        self.selected = Selected::None;
        self.pending = Pending::None;
        self.powered = false;
        match journal::recover(&mut self.store) {
            Ok(()) => {}
            Err(RecoverError::PowerLoss) => return Err(PowerOnError::PowerLoss),
            Err(RecoverError::Corrupt) => return Err(PowerOnError::Image(ImageError::Corrupt("journal"))),
        }
        state::validate(self.store.image()).map_err(PowerOnError::Image)?;
        self.powered = true;
        Ok(())
    }

    /// Processes one command APDU and returns the response APDU (data ‖ SW1 SW2).
    ///
    /// `Err(PowerLoss)` means the card went silent mid-command: whatever it had committed stays,
    /// and the rest never happened.
    pub fn process(&mut self, command: &[u8]) -> Result<Vec<u8>, PowerLoss> {
        if !self.powered {
            return Err(PowerLoss);
        }
        let pending = core::mem::take(&mut self.pending);
        let result = match Command::parse(command) {
            Ok(cmd) => self.dispatch(&cmd, pending),
            Err(e) => Err(Failure::Refused(e.into())),
        };
        let reply = match result {
            Ok(reply) => reply,
            Err(Failure::Refused(e)) => Reply { data: Vec::new(), sw: e.into() },
            Err(Failure::PowerLoss) => {
                self.powered = false;
                self.selected = Selected::None;
                return Err(PowerLoss);
            }
        };
        let mut out = reply.data;
        out.extend_from_slice(&reply.sw.to_bytes());
        Ok(out)
    }

    fn dispatch(&mut self, cmd: &Command<'_>, pending: Pending) -> Result<Reply, Failure> {
        match (cmd.cla, cmd.ins) {
            (0x00, 0xA4) => self.select(cmd),
            (0x00, 0xB0) => self.read_binary(cmd),
            (0x00, 0xB2) => self.read_record(cmd),
            (0x80, 0x5C) => self.get_balance(cmd),
            (0x80, 0x50) => self.initialize(cmd),
            (0x80, 0x52) => self.credit_for_load(cmd, pending),
            (0x80, 0xDC) => self.update_capp_data_cache(cmd, pending),
            (0x80, 0x54) => self.debit_for_purchase(cmd, pending),
            (0x80, 0x5A) => self.get_transaction_prove(cmd),
            (0x00, 0x84) => self.get_challenge(cmd),
            (0x84, 0x1E) => self.application_block(cmd, pending),
            (0x84, 0x18) => self.application_unblock(cmd, pending),
            (0x84, _) => Err(CardError::UnknownInstruction.into()),
            (0x00 | 0x80, _) => Err(CardError::UnknownInstruction.into()),
            _ => Err(CardError::UnknownClass.into()),
        }
    }

    /// Refuses unless the e-purse application is selected.
    pub(crate) fn require_app(&self) -> Result<(), CardError> {
        if self.selected == Selected::App {
            Ok(())
        } else {
            Err(CardError::ConditionsNotSatisfied)
        }
    }

    pub(crate) fn image(&self) -> &[u8] {
        self.store.image()
    }

    pub(crate) fn purse(&self) -> Purse {
        Purse::read(self.store.image())
    }

    pub(crate) fn set_pending(&mut self, pending: Pending) {
        self.pending = pending;
    }

    pub(crate) fn card_random(&mut self) -> [u8; 4] {
        self.rng.next_u32().to_be_bytes()
    }

    pub(crate) fn commit(&mut self, journal: Journal) -> Result<(), PowerLoss> {
        journal.commit(&mut self.store)
    }

    /// Locks the application as APPLICATION BLOCK (P2 `00`) does, without the secure messaging:
    /// an administration path for tests and tools that hold the card image itself. Locked cards
    /// refuse INITIALIZE with `6283` and answer SELECT with the FCI and `6283`.
    pub fn block_application(&mut self) -> Result<(), PowerLoss> {
        if self.purse().lock.is_locked() {
            return Ok(());
        }
        self.set_lock(Lock::Blocked)
    }

    /// Commits a new lock state: the purse alone, through the journal like every commit.
    pub(crate) fn set_lock(&mut self, lock: Lock) -> Result<(), PowerLoss> {
        let mut purse = self.purse();
        purse.lock = lock;
        let mut journal = Journal::new();
        purse.stage(&mut journal);
        self.commit(journal)
    }

    /// The store, to save the image.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Powers down and hands back the store.
    pub fn into_store(self) -> S {
        self.store
    }

    /// Raises an error when the card needs `n` more bytes than `le` asks for.
    pub(crate) fn check_le(cmd: &Command<'_>, n: usize) -> Result<(), CardError> {
        match cmd.le {
            Some(le) if usize::from(le) < n => Err(CardError::WrongLength),
            _ => Ok(()),
        }
    }
}
