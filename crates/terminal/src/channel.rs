//! The one I/O trait of the gate: a way to exchange APDUs with a card.

/// Why an APDU exchange failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChannelError {
    /// The card left the field (or lost power) before it answered.
    CardRemoved,
    /// The reader or transport failed.
    Transport(String),
}

impl std::fmt::Display for ChannelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChannelError::CardRemoved => write!(f, "card removed before it answered"),
            ChannelError::Transport(e) => write!(f, "reader error: {e}"),
        }
    }
}

impl std::error::Error for ChannelError {}

/// Sends a command APDU to a card and returns its response APDU (data ‖ SW1 SW2).
///
/// Implemented by a PC/SC reader, a vpcd socket, or a card in the same process.
pub trait CardChannel {
    /// Exchanges one APDU.
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, ChannelError>;
}

#[cfg(feature = "in-process")]
pub use in_process::InProcessChannel;

#[cfg(feature = "in-process")]
mod in_process {
    use super::{CardChannel, ChannelError};
    use yitong_card::{Card, Store};

    /// A [`CardChannel`] into a [`Card`] in the same process, counting APDUs, that can lose the
    /// answer to the next DEBIT (the phone pulled away just after the card committed).
    pub struct InProcessChannel<S, R> {
        card: Card<S, R>,
        apdus: u32,
        drop_next_money_answer: bool,
        trace: Option<Vec<(Vec<u8>, Vec<u8>)>>,
    }

    impl<S: Store, R: rand_core::Rng> InProcessChannel<S, R> {
        /// Wraps a powered card.
        pub fn new(card: Card<S, R>) -> Self {
            InProcessChannel { card, apdus: 0, drop_next_money_answer: false, trace: None }
        }

        /// APDUs exchanged so far.
        pub fn apdus(&self) -> u32 {
            self.apdus
        }

        /// The card processes the next DEBIT FOR PURCHASE or CREDIT FOR LOAD, but its answer never
        /// reaches the terminal.
        pub fn drop_next_money_answer(&mut self) {
            self.drop_next_money_answer = true;
        }

        /// Starts recording every exchange, for display.
        pub fn record_trace(&mut self) {
            self.trace = Some(Vec::new());
        }

        /// The exchanges recorded since the last call.
        pub fn take_trace(&mut self) -> Vec<(Vec<u8>, Vec<u8>)> {
            self.trace.as_mut().map(std::mem::take).unwrap_or_default()
        }

        /// The card.
        pub fn card(&self) -> &Card<S, R> {
            &self.card
        }

        /// The card, to take it away.
        pub fn into_card(self) -> Card<S, R> {
            self.card
        }
    }

    impl<S: Store, R: rand_core::Rng> CardChannel for InProcessChannel<S, R> {
        fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, ChannelError> {
            self.apdus += 1;
            let response = self.card.process(command).map_err(|_| ChannelError::CardRemoved)?;
            if let Some(trace) = &mut self.trace {
                trace.push((command.to_vec(), response.clone()));
            }
            if self.drop_next_money_answer && (command.starts_with(&[0x80, 0x54]) || command.starts_with(&[0x80, 0x52]))
            {
                self.drop_next_money_answer = false;
                return Err(ChannelError::CardRemoved);
            }
            Ok(response)
        }
    }
}
