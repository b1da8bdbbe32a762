//! The vsmartcard vpcd protocol, card side: the card connects to the driver's TCP port; every
//! message is a 2-byte big-endian length and a payload. A 1-byte payload is a control message
//! (0 power off, 1 power on, 2 reset, 4 get ATR, answered with the ATR); anything longer is a
//! C-APDU, answered with the R-APDU.
//!
//! vpcd waits for an answer to every message but the power and reset codes, so every other
//! message gets one: a C-APDU its R-APDU (the card's status word when it cannot parse it), and
//! anything shorter than an APDU header (4 bytes), empty or longer than [`MESSAGE_LEN_MAX`]
//! `6700` (wrong length). A silent card would leave the reader hanging until the server restarts.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use socket2::SockRef;
use yitong_card::{Card, Store};
use yitong_profile::StatusWord;

/// vpcd's port for its first reader ("Virtual PCD 00 00"); the second listens on the next one.
pub const PORT_DEFAULT: u16 = 35963;
/// The ATR of a contactless ISO 14443-4 card without historical bytes.
pub const ATR: [u8; 5] = [0x3B, 0x80, 0x80, 0x01, 0x01];
/// Longest message processed (a short APDU is at most 261 bytes); a longer one is read, dropped and
/// answered `6700`.
pub const MESSAGE_LEN_MAX: usize = 1_024;
/// An APDU header: CLA INS P1 P2. A message this short or longer that is not a control code is
/// an APDU.
pub const APDU_HEADER_LEN: usize = 4;
/// Wait between reconnection attempts.
pub const RECONNECT_DELAY: Duration = Duration::from_millis(500);

/// What vpcd asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request<'a> {
    /// The field went off.
    PowerOff,
    /// The field came on.
    PowerOn,
    /// Warm reset.
    Reset,
    /// The ATR, please.
    GetAtr,
    /// A command APDU (at least [`APDU_HEADER_LEN`] bytes).
    Apdu(&'a [u8]),
    /// Neither a control code nor long enough for an APDU (a 1-byte code vpcd does not define,
    /// 2 or 3 bytes, or nothing): answered `6700`.
    TooShort(&'a [u8]),
}

impl<'a> Request<'a> {
    /// Classifies a payload.
    pub fn parse(payload: &'a [u8]) -> Self {
        match payload {
            [0] => Request::PowerOff,
            [1] => Request::PowerOn,
            [2] => Request::Reset,
            [4] => Request::GetAtr,
            short if short.len() < APDU_HEADER_LEN => Request::TooShort(short),
            apdu => Request::Apdu(apdu),
        }
    }
}

/// How [`VirtualCard::handle`] answered.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    /// Send these bytes back.
    Reply(Vec<u8>),
    /// Nothing to send.
    Silent,
    /// The card went silent for good (a test aid: the phone pulled away after DEBIT).
    Vanish,
}

/// The card as vpcd sees it: powered or not, answering APDUs.
pub struct VirtualCard<S, R> {
    card: Card<S, R>,
    powered: bool,
    vanish_after_debit: bool,
}

impl<S: Store, R: rand_core::Rng> VirtualCard<S, R> {
    /// Wraps a card; with `vanish_after_debit` the card processes the first DEBIT FOR PURCHASE and
    /// then never answers (the process saves the image and exits).
    pub fn new(card: Card<S, R>, vanish_after_debit: bool) -> Self {
        VirtualCard { card, powered: true, vanish_after_debit }
    }

    /// The card's memory, to save it.
    pub fn image(&self) -> &[u8] {
        self.card.store().image()
    }

    /// Handles one vpcd message.
    pub fn handle(&mut self, payload: &[u8]) -> Answer {
        match Request::parse(payload) {
            Request::GetAtr => Answer::Reply(ATR.to_vec()),
            Request::PowerOff => {
                self.powered = false;
                Answer::Silent
            }
            Request::PowerOn | Request::Reset => {
                // A damaged image was refused at start; a reset can only fail on power loss,
                // which a file-backed card does not have.
                self.powered = self.card.reset().is_ok();
                Answer::Silent
            }
            Request::TooShort(_) => Answer::Reply(StatusWord::WRONG_LENGTH.to_bytes().to_vec()),
            Request::Apdu(apdu) => {
                if !self.powered {
                    // vpcd powers the card on before APDUs; a stray one gets "conditions not
                    // satisfied" rather than silence, so the reader does not hang.
                    return Answer::Reply(StatusWord::CONDITIONS_NOT_SATISFIED.to_bytes().to_vec());
                }
                let response = match self.card.process(apdu) {
                    Ok(r) => r,
                    Err(_) => return Answer::Vanish,
                };
                if self.vanish_after_debit && apdu.starts_with(&[0x80, 0x54]) {
                    return Answer::Vanish;
                }
                Answer::Reply(response)
            }
        }
    }
}

/// Why serving stopped.
#[derive(Debug)]
pub enum Stopped {
    /// The card vanished on purpose (test aid).
    Vanished,
    /// `keep_going` said so between connections.
    Asked,
    /// Saving the image failed: stop rather than answer for money not on disk.
    Save(io::Error),
}

/// Serves `card` to vpcd at `host:port` until it vanishes or saving fails; reconnects whenever the
/// connection drops (pcscd restarting). `save` is called with the image whenever it changed,
/// before the answer leaves: a committed transaction is on disk before the reader learns of it.
/// `log` receives one line per connection event; `keep_going` is asked before each (re)connection.
pub fn serve<S: Store, R: rand_core::Rng>(
    card: &mut VirtualCard<S, R>,
    host: &str,
    port: u16,
    save: &mut dyn FnMut(&[u8]) -> io::Result<()>,
    log: &mut dyn FnMut(&str),
    keep_going: &dyn Fn() -> bool,
) -> Stopped {
    let mut saved = card.image().to_vec();
    let mut unreachable = false;
    loop {
        if !keep_going() {
            return Stopped::Asked;
        }
        let stream = match TcpStream::connect((host, port)) {
            Ok(s) => s,
            Err(e) => {
                // Say it once per outage, not twice a second.
                if !unreachable {
                    log(&format!(
                        "cannot reach vpcd at {host}:{port} ({e}); retrying every {} ms",
                        RECONNECT_DELAY.as_millis()
                    ));
                    unreachable = true;
                }
                std::thread::sleep(RECONNECT_DELAY);
                continue;
            }
        };
        unreachable = false;
        log(&format!("connected to vpcd at {host}:{port}"));
        match session(card, stream, &mut saved, save) {
            Ok(Some(stopped)) => return stopped,
            Ok(None) => log("vpcd closed the connection; reconnecting"),
            Err(e) => log(&format!("connection lost ({e}); reconnecting")),
        }
        std::thread::sleep(RECONNECT_DELAY);
    }
}

fn session<S: Store, R: rand_core::Rng>(
    card: &mut VirtualCard<S, R>,
    mut stream: TcpStream,
    saved: &mut Vec<u8>,
    save: &mut dyn FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<Option<Stopped>> {
    stream.set_nodelay(true)?;
    let trace = std::env::var_os("YITONG_VPCD_TRACE").is_some();
    let mut payload = vec![0u8; MESSAGE_LEN_MAX];
    loop {
        // vpcd writes the length and the payload separately: without quick ACKs Linux delays
        // each APDU by its delayed-ACK timer (about 40 ms). The flag does not stick: set it
        // before every read.
        SockRef::from(&stream).set_tcp_quickack(true)?;
        let mut len = [0u8; 2];
        match stream.read_exact(&mut len) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e),
        }
        let len = usize::from(u16::from_be_bytes(len));
        SockRef::from(&stream).set_tcp_quickack(true)?;
        let answer = if len > MESSAGE_LEN_MAX {
            // Read past it, so that the framing stays in step, and refuse it.
            let dropped = io::copy(&mut (&mut stream).take(len as u64), &mut io::sink())?;
            if dropped < len as u64 {
                return Ok(None);
            }
            Answer::Reply(StatusWord::WRONG_LENGTH.to_bytes().to_vec())
        } else {
            stream.read_exact(&mut payload[..len])?;
            card.handle(&payload[..len])
        };
        if trace {
            let shown = payload.get(..len).map_or_else(|| format!("({len} bytes dropped)"), hex::encode_upper);
            eprintln!("vpcd > {shown} < {answer:?}");
        }
        if card.image() != saved.as_slice() {
            if let Err(e) = save(card.image()) {
                return Ok(Some(Stopped::Save(e)));
            }
            saved.clear();
            saved.extend_from_slice(card.image());
        }
        match answer {
            Answer::Reply(bytes) => {
                let frame_len = u16::try_from(bytes.len()).expect("an R-APDU is at most 258 bytes");
                let mut frame = Vec::with_capacity(bytes.len() + 2);
                frame.extend_from_slice(&frame_len.to_be_bytes());
                frame.extend_from_slice(&bytes);
                stream.write_all(&frame)?;
            }
            Answer::Silent => {}
            Answer::Vanish => return Ok(Some(Stopped::Vanished)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use yitong_card::testing::CountingRng;
    use yitong_card::{CardSpec, MasterKeys, MemStore};
    use yitong_profile::files::IssuerData;

    use super::*;

    fn card() -> VirtualCard<MemStore, CountingRng> {
        let issuer = IssuerData {
            issuer_id: [0, 0, 0x10, 0, 0, 0, 0, 1],
            app_type: 2,
            app_version: 1,
            serial: [0x10, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            valid_from: [0x20, 0x26, 1, 1],
            valid_to: [0x20, 0x30, 0x12, 0x31],
        };
        let master = MasterKeys::new(yitong_crypto::Algorithm::Des, [1; 16], [2; 16], [3; 16], [4; 16], [5; 16]);
        let image = CardSpec::new(issuer, master, 1).personalize();
        VirtualCard::new(Card::power_on(MemStore::new(image), CountingRng(0)).unwrap(), false)
    }

    #[test]
    fn control_messages_and_apdus() {
        let mut c = card();
        assert_eq!(c.handle(&[4]), Answer::Reply(ATR.to_vec()));
        assert_eq!(c.handle(&[0]), Answer::Silent);
        assert_eq!(c.handle(&[0x80, 0x5C, 0x00, 0x02, 0x04]), Answer::Reply(vec![0x69, 0x85]), "powered off");
        assert_eq!(c.handle(&[1]), Answer::Silent);
        let select = hex::decode("00A4040008A000000632010105").unwrap();
        let Answer::Reply(fci) = c.handle(&select) else { panic!() };
        assert_eq!(&fci[fci.len() - 2..], &[0x90, 0x00]);
        assert_eq!(c.handle(&[0x80, 0x5C, 0x00, 0x02, 0x04]), Answer::Reply(vec![0, 0, 0, 0, 0x90, 0x00]));
        // A reset deselects.
        assert_eq!(c.handle(&[2]), Answer::Silent);
        assert_eq!(c.handle(&[0x80, 0x5C, 0x00, 0x02, 0x04]), Answer::Reply(vec![0x69, 0x85]));
    }

    fn reply(sw: StatusWord) -> Answer {
        Answer::Reply(sw.to_bytes().to_vec())
    }

    /// Regression: a one-byte message that is no control code (`80`) was left unanswered, and
    /// vpcd waited for ever. Everything that is not a control code gets a status word.
    #[test]
    fn every_message_but_a_control_code_is_answered() {
        let mut c = card();
        for short in [&[0x80][..], &[3], &[9], &[0xFF], &[], &[0x80, 0x5C], &[0x80, 0x5C, 0x00]] {
            assert_eq!(c.handle(short), Answer::Reply(vec![0x67, 0x00]), "{short:02X?}");
        }
        // Too short is too short even with the field off.
        assert_eq!(c.handle(&[0]), Answer::Silent);
        assert_eq!(c.handle(&[0x80]), Answer::Reply(vec![0x67, 0x00]));
        assert_eq!(c.handle(&[1]), Answer::Silent);
        // What the card cannot parse or does not know gets the card's own status word.
        assert_eq!(c.handle(&[0x80, 0xFF, 0x00, 0x00]), reply(StatusWord::UNKNOWN_INSTRUCTION));
        assert_eq!(c.handle(&[0xA0, 0x5C, 0x00, 0x02]), reply(StatusWord::UNKNOWN_CLASS));
        assert_eq!(c.handle(&[0x80, 0x5C, 0x00, 0x02, 0x05, 0x00]), reply(StatusWord::WRONG_LENGTH), "Lc 5, 1 byte");
        assert_eq!(c.handle(&[0x00, 0xA4, 0x04, 0x00, 0x00, 0x00, 0x00]), reply(StatusWord::WRONG_LENGTH), "extended");
        assert_eq!(c.handle(&[0x80, 0x5C, 0x00, 0x02, 0x04]), reply(StatusWord::CONDITIONS_NOT_SATISFIED), "no ADF");
    }

    /// A fake vpcd on loopback: the card connects, answers the ATR and APDUs with framed
    /// messages, answers `6700` to messages too short or too long (and keeps the framing), and
    /// reconnects after the driver drops the connection.
    #[test]
    fn serves_framed_messages_and_reconnects() {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;

        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let done = Arc::new(AtomicBool::new(false));
        let driver_done = Arc::clone(&done);
        let driver = std::thread::spawn(move || {
            let exchange = |s: &mut TcpStream, payload: &[u8]| -> Vec<u8> {
                // Length and payload in two writes, as vpcd does.
                s.write_all(&(payload.len() as u16).to_be_bytes()).unwrap();
                s.write_all(payload).unwrap();
                let mut len = [0u8; 2];
                s.read_exact(&mut len).unwrap();
                let mut r = vec![0u8; usize::from(u16::from_be_bytes(len))];
                s.read_exact(&mut r).unwrap();
                r
            };
            let (mut s, _) = listener.accept().unwrap();
            assert_eq!(exchange(&mut s, &[4]), ATR);
            drop(s);
            let (mut s, _) = listener.accept().unwrap();
            s.write_all(&[0, 1, 1]).unwrap();
            let fci = exchange(&mut s, &hex::decode("00A4040008A000000632010105").unwrap());
            assert_eq!(&fci[fci.len() - 2..], &[0x90, 0x00]);
            // Byte-exact on the wire: length 0002, status word 6700.
            s.write_all(&[0x00, 0x01, 0x80]).unwrap();
            let mut answer = [0u8; 4];
            s.read_exact(&mut answer).unwrap();
            assert_eq!(answer, [0x00, 0x02, 0x67, 0x00], "one-byte message 80");
            assert_eq!(exchange(&mut s, &[]), [0x67, 0x00], "empty message");
            assert_eq!(exchange(&mut s, &[0x80, 0x5C, 0x00]), [0x67, 0x00], "three bytes");
            assert_eq!(exchange(&mut s, &[0x80; MESSAGE_LEN_MAX + 1]), [0x67, 0x00], "too long");
            assert_eq!(exchange(&mut s, &[0x80; 0xFFFF]), [0x67, 0x00], "longest frame");
            // The framing is still in step: the next APDU gets its own answer.
            assert_eq!(exchange(&mut s, &[0x80, 0x5C, 0x00, 0x02, 0x04]), [0, 0, 0, 0, 0x90, 0x00]);
            drop(s);
            let (s, _) = listener.accept().unwrap();
            driver_done.store(true, Ordering::SeqCst);
            drop(s);
        });
        let mut c = card();
        let mut lines = Vec::new();
        let stopped = serve(&mut c, "127.0.0.1", port, &mut |_| Ok(()), &mut |l| lines.push(l.to_string()), &|| {
            !done.load(Ordering::SeqCst)
        });
        driver.join().unwrap();
        assert!(matches!(stopped, Stopped::Asked));
        assert_eq!(lines.iter().filter(|l| l.starts_with("connected")).count(), 3, "{lines:?}");
    }
}
