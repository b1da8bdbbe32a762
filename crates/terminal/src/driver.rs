//! Drives the sans-IO flows over a [`CardChannel`]: the only place here that does I/O, through
//! the channel and the caller's persistence hook.

use yitong_profile::DateTime;

use crate::channel::{CardChannel, ChannelError};
use crate::error::TapError;
use crate::gate::{Gate, Next, TapOutcome};
use crate::topup::TopUpTerminal;

/// APDUs a tap may exchange before the driver gives up: a full tap needs 6, resolving a doubt
/// one more, or up to 11 more when the card's log must be searched.
pub const TAP_APDUS_MAX: u32 = 24;

/// Runs one tap of the card on `channel` at `gate`. `persist` is called with the gate before
/// each money command; if it fails, the command is not sent.
pub fn run_tap<C: CardChannel + ?Sized>(
    gate: &mut Gate,
    channel: &mut C,
    now: DateTime,
    persist: &mut dyn FnMut(&Gate) -> Result<(), String>,
) -> Result<TapOutcome, TapError> {
    let (mut tap, mut next) = gate.start_tap(now);
    for _ in 0..TAP_APDUS_MAX {
        let (apdu, persist_first) = match next {
            Next::Done(outcome) => return Ok(outcome),
            Next::Send { apdu, persist_first } => (apdu, persist_first),
        };
        if persist_first {
            persist(gate).map_err(TapError::Persist)?;
        }
        let response = match channel.transmit(&apdu) {
            Ok(r) => r,
            Err(ChannelError::CardRemoved) => return Err(gate.card_lost(tap)),
            Err(e) => {
                let lost = gate.card_lost(tap);
                return Err(if matches!(lost, TapError::CardLost { debit_in_doubt: true }) {
                    lost
                } else {
                    TapError::Channel(e)
                });
            }
        };
        next = gate.handle_response(&mut tap, &response)?;
    }
    Err(TapError::BadResponse("tap did not end within its APDU budget"))
}

/// Loads `amount_fen` onto the card on `channel`; `persist` as for [`run_tap`].
pub fn run_load<C: CardChannel + ?Sized>(
    terminal: &mut TopUpTerminal,
    channel: &mut C,
    now: DateTime,
    amount_fen: u32,
    persist: &mut dyn FnMut(&TopUpTerminal) -> Result<(), String>,
) -> Result<TapOutcome, TapError> {
    let (mut load, mut next) = terminal.start_load(now, amount_fen);
    for _ in 0..TAP_APDUS_MAX {
        let (apdu, persist_first) = match next {
            Next::Done(outcome) => return Ok(outcome),
            Next::Send { apdu, persist_first } => (apdu, persist_first),
        };
        if persist_first {
            persist(terminal).map_err(TapError::Persist)?;
        }
        let response = match channel.transmit(&apdu) {
            Ok(r) => r,
            Err(_) => return Err(terminal.card_lost(load)),
        };
        next = terminal.handle_response(&mut load, &response)?;
    }
    Err(TapError::BadResponse("load did not end within its APDU budget"))
}
