//! The phone's secure element as the flows use it: any [`CardChannel`], and the software SE
//! ([`SoftSe`]: a `yitong-card` card powered on from the phone file's image) whose memory goes
//! back into the file after every command.

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use yitong_card::{Card, MemStore, Store};
use yitong_profile::apdu::{self, command_name};
use yitong_profile::StatusWord;
use yitong_terminal::{CardChannel, ChannelError, InProcessChannel};

use crate::error::WalletError;

/// A software SE holding one card, with the T-Union application selected.
pub struct SoftSe {
    channel: InProcessChannel<MemStore, ChaCha20Rng>,
}

impl SoftSe {
    /// Powers the card of `image` on (finishing any interrupted commit, as a real SE does at
    /// power-up) and selects the T-Union application. A blocked card still selects.
    pub fn power_on(image: &[u8]) -> Result<SoftSe, WalletError> {
        let card = Card::power_on(MemStore::new(image.to_vec()), system_rng()?)
            .map_err(|e| WalletError::BadCardAnswer { command: "power-on", why: format!("the card image: {e}") })?;
        let mut se = SoftSe { channel: InProcessChannel::new(card) };
        let answer = transmit(&mut se, &apdu::select_by_name(&apdu::AID_TUNION))?;
        match StatusWord::split(&answer) {
            Some((_, StatusWord::OK | StatusWord::APPLICATION_LOCKED)) => Ok(se),
            Some((_, status)) => Err(WalletError::Card { command: "SELECT", status }),
            None => Err(WalletError::BadCardAnswer { command: "SELECT", why: "shorter than a status word".into() }),
        }
    }

    /// The card's memory now, for the phone file.
    pub fn image(&self) -> Vec<u8> {
        self.channel.card().store().image().to_vec()
    }

    /// Test aid: the card commits the next CREDIT FOR LOAD or DEBIT, but its answer is lost (the
    /// phone pulled away from the reader, the app killed).
    pub fn lose_next_money_answer(&mut self) {
        self.channel.drop_next_money_answer();
    }
}

impl CardChannel for SoftSe {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, ChannelError> {
        self.channel.transmit(command)
    }
}

/// A random source seeded by the operating system, for the card's randoms.
fn system_rng() -> Result<ChaCha20Rng, WalletError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| WalletError::Usage(format!("no system randomness for the card: {e}")))?;
    Ok(ChaCha20Rng::from_seed(seed))
}

/// Sends `command` and returns the card's whole answer (data and status word), whatever the
/// status word: for evidence, which the service judges.
pub fn transmit(se: &mut dyn CardChannel, command: &[u8]) -> Result<Vec<u8>, WalletError> {
    let name = command_name(command);
    let answer = se.transmit(command).map_err(|error| WalletError::Channel { command: name, error })?;
    if answer.len() < 2 {
        return Err(WalletError::BadCardAnswer { command: name, why: "shorter than a status word".into() });
    }
    Ok(answer)
}

/// Sends `command` and returns the card's whole answer when its status word is `9000`; any
/// other status word is the error [`WalletError::Card`], named.
pub fn exchange(se: &mut dyn CardChannel, command: &[u8]) -> Result<Vec<u8>, WalletError> {
    let answer = transmit(se, command)?;
    success(command, answer)
}

/// The card's whole `answer` to `command` if its status word is `9000`, else the named error.
pub fn success(command: &[u8], answer: Vec<u8>) -> Result<Vec<u8>, WalletError> {
    match StatusWord::split(&answer) {
        Some((_, StatusWord::OK)) => Ok(answer),
        Some((_, status)) => Err(WalletError::Card { command: command_name(command), status }),
        None => {
            Err(WalletError::BadCardAnswer { command: command_name(command), why: "shorter than a status word".into() })
        }
    }
}

/// A random ID of `bytes` random bytes in hex, upper case, after `prefix`: device and SE IDs.
pub fn random_id(prefix: &str, bytes: usize) -> Result<String, WalletError> {
    let mut random = vec![0u8; bytes];
    getrandom::fill(&mut random).map_err(|e| WalletError::Usage(format!("no system randomness: {e}")))?;
    Ok(format!("{prefix}{}", hex::encode_upper(random)))
}

/// Random bytes after an order ID's time.
const ORDER_ID_RANDOM_BYTES: usize = 6;

/// An order ID the phone makes, after `prefix`: the time (Unix milliseconds, 12 hex digits) and
/// 48 random bits, upper case (the service's rule: 6 to 32 of `A-Z a-z 0-9 _ -`). Time first, the
/// service's orders, their transitions, postings and loads are inserted at the end of their
/// indexes, in pages that the writes committed together share, rather than each in a page of
/// its own anywhere in the index (about 40% of a top-up's WAL writes, `docs/platform.md`).
pub fn order_id(prefix: &str) -> Result<String, WalletError> {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_millis())
        .min(0xFFFF_FFFF_FFFF);
    let random = random_id("", ORDER_ID_RANDOM_BYTES)?;
    Ok(format!("{prefix}{now_ms:012X}{random}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_word_other_than_9000_is_named() {
        struct Refusing;
        impl CardChannel for Refusing {
            fn transmit(&mut self, _: &[u8]) -> Result<Vec<u8>, ChannelError> {
                Ok(vec![0x94, 0x01])
            }
        }
        let error = exchange(&mut Refusing, &apdu::get_balance()).unwrap_err();
        assert_eq!(error.to_string(), "the card refused GET BALANCE: 9401 (insufficient balance)");
        assert_eq!(transmit(&mut Refusing, &apdu::get_balance()).unwrap(), [0x94, 0x01]);
    }

    #[test]
    fn a_lost_answer_and_a_short_one_are_errors() {
        struct Gone;
        impl CardChannel for Gone {
            fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, ChannelError> {
                if command[1] == 0x52 {
                    Err(ChannelError::CardRemoved)
                } else {
                    Ok(vec![0x90])
                }
            }
        }
        let credit = apdu::credit_for_load([0x20, 0x26, 0x11, 0x25], [0x10, 0, 0], [0; 4]);
        assert_eq!(
            exchange(&mut Gone, &credit).unwrap_err().to_string(),
            "CREDIT FOR LOAD: card removed before it answered"
        );
        let error = exchange(&mut Gone, &apdu::get_balance()).unwrap_err().to_string();
        assert_eq!(error, "the card's answer to GET BALANCE: shorter than a status word");
    }

    #[test]
    fn order_ids_fit_the_services_rule_and_sort_by_time() {
        let first = order_id("FEE-").unwrap();
        assert_eq!(first.len(), 28, "{first}");
        assert!(first.len() <= 32 && first.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'), "{first}");
        std::thread::sleep(std::time::Duration::from_millis(2));
        let later = order_id("FEE-").unwrap();
        assert!(later > first, "{later} sorts after {first}");
        // The time: 12 hex digits of Unix milliseconds, within a minute of now.
        let ms = i64::from_str_radix(&later[4..16], 16).unwrap();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
        assert!((now - ms).abs() < 60_000, "{ms} against {now}");
        assert_ne!(order_id("TU-").unwrap()[15..], order_id("TU-").unwrap()[15..], "random after the time");
    }
}
