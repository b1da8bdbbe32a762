//! The PC/SC side: list readers, wait for a card, exchange APDUs through pcscd.

use std::ffi::{CStr, CString};
use std::time::{Duration, Instant};

use pcsc::{Context, Protocols, ReaderState, Scope, ShareMode, State};
use yitong_terminal::{CardChannel, ChannelError};

/// A PC/SC failure, explained.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReaderError(pub String);

impl std::fmt::Display for ReaderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ReaderError {}

fn explain(e: pcsc::Error) -> ReaderError {
    ReaderError(match e {
        pcsc::Error::NoService | pcsc::Error::ServiceStopped => {
            "pcscd is not running (start it with `pcscd --foreground &`, see docs/readers.md)".into()
        }
        pcsc::Error::NoReadersAvailable => "no smart card reader is connected".into(),
        other => other.to_string(),
    })
}

/// A connection to pcscd.
pub struct Readers {
    context: Context,
}

impl Readers {
    /// Connects to pcscd.
    pub fn establish() -> Result<Self, ReaderError> {
        Ok(Readers { context: Context::establish(Scope::User).map_err(explain)? })
    }

    /// The readers' names.
    pub fn list(&self) -> Result<Vec<String>, ReaderError> {
        match self.context.list_readers_owned() {
            Ok(names) => Ok(names.into_iter().map(|n| n.to_string_lossy().into_owned()).collect()),
            Err(pcsc::Error::NoReadersAvailable) => Ok(Vec::new()),
            Err(e) => Err(explain(e)),
        }
    }

    /// The reader named `name_or_index`: its index in [`Readers::list`], its full name, or the
    /// only one whose name contains it.
    pub fn resolve(&self, name_or_index: &str) -> Result<CString, ReaderError> {
        let names = self.list()?;
        let pick = if let Ok(i) = name_or_index.parse::<usize>() {
            names.get(i).cloned()
        } else if let Some(exact) = names.iter().find(|n| *n == name_or_index) {
            Some(exact.clone())
        } else {
            let matching: Vec<&String> = names.iter().filter(|n| n.contains(name_or_index)).collect();
            match matching.as_slice() {
                [one] => Some((*one).clone()),
                _ => None,
            }
        };
        let name = pick.ok_or_else(|| {
            ReaderError(format!("--reader: no single reader `{name_or_index}`; readers: {}", names.join(", ")))
        })?;
        CString::new(name).map_err(|_| ReaderError("reader name with a NUL byte".into()))
    }

    /// Waits up to `timeout` for a card on `reader`, then connects to it.
    ///
    /// A card that pcscd still marks mute (a phone that came back before the reader noticed it
    /// had left) is tried anyway: connecting powers it up again.
    pub fn wait_for_card(&self, reader: &CStr, timeout: Duration) -> Result<PcscChannel, ReaderError> {
        let deadline = Instant::now() + timeout;
        let mut states = [ReaderState::new(reader.to_owned(), State::UNAWARE)];
        let mut last_error = None;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let why = last_error.map(|e: pcsc::Error| format!(" ({e})")).unwrap_or_default();
                return Err(ReaderError(format!(
                    "no card on {} within {} s{why}",
                    reader.to_string_lossy(),
                    timeout.as_secs()
                )));
            }
            match self.context.get_status_change(left.min(CONNECT_RETRY), &mut states) {
                Ok(()) | Err(pcsc::Error::Timeout) => {}
                Err(e) => return Err(explain(e)),
            }
            if states[0].event_state().contains(State::PRESENT) {
                match self.context.connect(reader, ShareMode::Shared, Protocols::ANY) {
                    Ok(card) => {
                        let atr = card.status2_owned().map(|s| s.atr().to_vec()).unwrap_or_default();
                        return Ok(PcscChannel { card, atr, reader: reader.to_string_lossy().into_owned() });
                    }
                    Err(e) => last_error = Some(e),
                }
            }
            states[0].sync_current_state();
        }
    }
}

/// How often a present but unresponsive card is tried again.
const CONNECT_RETRY: Duration = Duration::from_millis(250);

/// A card in a PC/SC reader.
pub struct PcscChannel {
    card: pcsc::Card,
    atr: Vec<u8>,
    reader: String,
}

impl PcscChannel {
    /// The card's ATR.
    pub fn atr(&self) -> &[u8] {
        &self.atr
    }

    /// The reader's name.
    pub fn reader(&self) -> &str {
        &self.reader
    }
}

impl CardChannel for PcscChannel {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, ChannelError> {
        let mut buffer = [0u8; pcsc::MAX_BUFFER_SIZE];
        match self.card.transmit(command, &mut buffer) {
            // vpcd answers nothing when the card's connection dropped mid-command.
            Ok(r) if r.len() < 2 => Err(ChannelError::CardRemoved),
            Ok(r) => Ok(r.to_vec()),
            Err(
                pcsc::Error::RemovedCard
                | pcsc::Error::ResetCard
                | pcsc::Error::NoSmartcard
                | pcsc::Error::UnpoweredCard
                | pcsc::Error::UnresponsiveCard
                | pcsc::Error::CommError
                | pcsc::Error::InvalidHandle,
            ) => Err(ChannelError::CardRemoved),
            Err(e) => Err(ChannelError::Transport(explain(e).0)),
        }
    }
}
