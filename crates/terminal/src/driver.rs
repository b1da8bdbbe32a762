//! Drives the sans-IO flows over a [`CardChannel`]: the only place here that does I/O, through
//! the channel and the caller's persistence hook.

use yitong_profile::DateTime;

use crate::channel::{CardChannel, ChannelError};
use crate::error::TapError;
use crate::gate::{Gate, Tap};
use crate::outcome::{Next, TapOutcome};
use crate::topup::{Load, TopUpTerminal};

/// APDUs a tap may exchange before the driver gives up: a full tap needs 6 (9 to block a
/// hotlisted card), settling a doubt 1 more, or up to 21 when the card's log must be searched and
/// read again; a card rarely holds more than two doubts at one terminal, and those left over are
/// asked about at its next tap.
pub const TAP_APDUS_MAX: u32 = 64;

/// A terminal whose transaction the driver runs: the gate and the top-up terminal.
trait Flow {
    type Transaction;
    fn handle_response(&mut self, transaction: &mut Self::Transaction, response: &[u8]) -> Result<Next, TapError>;
    fn card_lost(&mut self, transaction: Self::Transaction) -> TapError;
    fn money_command_unsent(&mut self, transaction: &mut Self::Transaction);
}

impl Flow for Gate {
    type Transaction = Tap;
    fn handle_response(&mut self, tap: &mut Tap, response: &[u8]) -> Result<Next, TapError> {
        Gate::handle_response(self, tap, response)
    }
    fn card_lost(&mut self, tap: Tap) -> TapError {
        Gate::card_lost(self, tap)
    }
    fn money_command_unsent(&mut self, tap: &mut Tap) {
        Gate::money_command_unsent(self, tap)
    }
}

impl Flow for TopUpTerminal {
    type Transaction = Load;
    fn handle_response(&mut self, load: &mut Load, response: &[u8]) -> Result<Next, TapError> {
        TopUpTerminal::handle_response(self, load, response)
    }
    fn card_lost(&mut self, load: Load) -> TapError {
        TopUpTerminal::card_lost(self, load)
    }
    fn money_command_unsent(&mut self, load: &mut Load) {
        TopUpTerminal::money_command_unsent(self, load)
    }
}

fn drive<F: Flow, C: CardChannel + ?Sized>(
    flow: &mut F,
    mut transaction: F::Transaction,
    mut next: Next,
    channel: &mut C,
    persist: &mut dyn FnMut(&F) -> Result<(), String>,
) -> Result<TapOutcome, TapError> {
    for _ in 0..TAP_APDUS_MAX {
        let (apdu, persist_first) = match next {
            Next::Done(outcome) => return Ok(outcome),
            Next::Send { apdu, persist_first } => (apdu, persist_first),
        };
        if persist_first {
            if let Err(e) = persist(flow) {
                // Not sent: no doubt may outlive the failed save.
                flow.money_command_unsent(&mut transaction);
                return Err(TapError::Persist(e));
            }
        }
        let response = match channel.transmit(&apdu) {
            Ok(r) => r,
            Err(ChannelError::CardRemoved) => return Err(flow.card_lost(transaction)),
            Err(e) => {
                let lost = flow.card_lost(transaction);
                let in_doubt = matches!(lost, TapError::CardLost { debit_in_doubt: true });
                return Err(if in_doubt { lost } else { TapError::Channel(e) });
            }
        };
        next = flow.handle_response(&mut transaction, &response)?;
    }
    match next {
        // The last answer ended the transaction: its outcome stands.
        Next::Done(outcome) => Ok(outcome),
        // Out of budget before the next command, which is not sent: a money command's doubt,
        // already remembered, is withdrawn.
        Next::Send { persist_first, .. } => {
            if persist_first {
                flow.money_command_unsent(&mut transaction);
            }
            Err(TapError::BadResponse("the transaction did not end within its APDU budget"))
        }
    }
}

/// Runs one tap of the card on `channel` at `gate`. `persist` is called with the gate before
/// each money command; if it fails, the command is not sent.
pub fn run_tap<C: CardChannel + ?Sized>(
    gate: &mut Gate,
    channel: &mut C,
    now: DateTime,
    persist: &mut dyn FnMut(&Gate) -> Result<(), String>,
) -> Result<TapOutcome, TapError> {
    let (tap, next) = gate.start_tap(now);
    drive(gate, tap, next, channel, persist)
}

/// Loads `amount_fen` onto the card on `channel`; `persist` as for [`run_tap`].
pub fn run_load<C: CardChannel + ?Sized>(
    terminal: &mut TopUpTerminal,
    channel: &mut C,
    now: DateTime,
    amount_fen: u32,
    persist: &mut dyn FnMut(&TopUpTerminal) -> Result<(), String>,
) -> Result<TapOutcome, TapError> {
    let (load, next) = terminal.start_load(now, amount_fen);
    drive(terminal, load, next, channel, persist)
}
