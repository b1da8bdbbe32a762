//! What the book keeps of a record — its place on the card (sequence and counter), the
//! transaction's identity, its balances and what proves it — and the checks a record passes
//! before it is kept.

use serde::{Deserialize, Serialize};
use yitong_profile::apdu::transaction_type;
use yitong_profile::DateTime;
use yitong_record::{RecordStatus, TacError, TapId, TapKind, TapRecord};

use crate::bytes::{kind_byte, kind_of, push_signed, push_varint, BytesError, Reader};

/// A card: its issuer and application serial (what diversifies its TAC key). It has one balance
/// and two counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CardId {
    /// Issuer ID (EF15).
    #[serde(with = "crate::hex_serde")]
    pub issuer_id: [u8; 8],
    /// Application serial (EF15).
    #[serde(with = "crate::hex_serde")]
    pub card_serial: [u8; 10],
}

impl std::hash::Hash for CardId {
    /// Its 18 bytes in one write (a derived hash writes each array's length and bytes: four
    /// writes, where the back office's caches hash a card for every record).
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let mut bytes = [0u8; 18];
        bytes[..8].copy_from_slice(&self.issuer_id);
        bytes[8..].copy_from_slice(&self.card_serial);
        state.write(&bytes);
    }
}

impl CardId {
    /// The card a record is about.
    pub fn of(record: &TapRecord) -> Self {
        CardId { issuer_id: record.issuer_id, card_serial: record.card_serial }
    }
}

impl std::fmt::Display for CardId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", hex::encode_upper(self.issuer_id), hex::encode_upper(self.card_serial))
    }
}

/// Which of the card's two counters numbers a transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sequence {
    /// The online counter: loads, which add to the balance.
    Online,
    /// The offline counter: purchases (composite entries and exits included), which take from it.
    Offline,
}

impl Sequence {
    /// The sequence of an EF18 transaction type (the TAC covers the type, not the record's
    /// `kind` label); `None` for a type the profile's cards do not write.
    pub fn of_transaction_type(transaction_type: u8) -> Option<Sequence> {
        match transaction_type {
            transaction_type::EP_LOAD => Some(Sequence::Online),
            transaction_type::EP_PURCHASE | transaction_type::CAPP_PURCHASE => Some(Sequence::Offline),
            _ => None,
        }
    }

    /// The card's other sequence.
    pub fn other(self) -> Sequence {
        match self {
            Sequence::Online => Sequence::Offline,
            Sequence::Offline => Sequence::Online,
        }
    }

    /// What a transaction of this sequence of `amount_fen` does to the balance.
    pub(crate) fn delta_fen(self, amount_fen: u32) -> i64 {
        match self {
            Sequence::Online => i64::from(amount_fen),
            Sequence::Offline => -i64::from(amount_fen),
        }
    }

    /// Whether a balance change of `change_fen` is impossible for transactions of this sequence
    /// alone (loads never take money, purchases never add it).
    pub(crate) fn cannot_explain(self, change_fen: i64) -> bool {
        match self {
            Sequence::Online => change_fen < 0,
            Sequence::Offline => change_fen > 0,
        }
    }
}

impl std::fmt::Display for Sequence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Sequence::Online => "online",
            Sequence::Offline => "offline",
        })
    }
}

/// What a kept record proves about the card's commit, weakest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Evidence {
    /// The gate could not tell whether the card committed; later records decide.
    Unconfirmed,
    /// Recovered from the card's EF18 log by the gate, without a TAC: the gate's word.
    Logged,
    /// Its TAC verified with the issuer's key: the card committed it.
    Proven,
}

/// The outcome of a record's TAC check, done by the caller (`yitong_record::verify_tac`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TacCheck {
    /// The TAC verified.
    Verified,
    /// The record carries no TAC (recovered from the card's log, or unconfirmed).
    Absent,
    /// The TAC did not verify, for this reason.
    Failed(TacError),
}

impl From<Result<(), TacError>> for TacCheck {
    fn from(result: Result<(), TacError>) -> Self {
        match result {
            Ok(()) => TacCheck::Verified,
            Err(TacError::Missing) => TacCheck::Absent,
            Err(e) => TacCheck::Failed(e),
        }
    }
}

/// Why a record is not kept as a transaction (the caller keeps it for audit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    /// Its TAC does not prove it ([`TacError::Missing`]: a `confirmed` record without a TAC).
    Tac(TacError),
    /// A transaction type the profile's cards do not write.
    UnknownTransactionType(u8),
    /// The record's `kind` says load and its type purchase, or the other way round.
    KindMismatch {
        /// The record's kind.
        kind: TapKind,
        /// The record's EF18 type.
        transaction_type: u8,
    },
    /// A balance outside the card's 4 signed bytes.
    BalanceOutOfRange {
        /// The balance, in fen.
        balance_fen: i64,
    },
    /// Balance after ≠ balance before ± amount.
    BalancesDoNotAddUp {
        /// Balance before, in fen.
        before_fen: i64,
        /// Amount, in fen.
        amount_fen: u32,
        /// Balance after, in fen.
        after_fen: i64,
    },
}

impl Rejection {
    /// Whether the rejection counts towards the card's TAC failures: a TAC that does not match,
    /// or a `confirmed` record without one. A missing key (`UnknownIssuer`, `KeyMismatch`) is the
    /// back office's gap, not the card's; a record of an unknown type is malformed, not forged.
    pub fn is_tac_failure(&self) -> bool {
        match self {
            Rejection::Tac(TacError::UnknownIssuer | TacError::KeyMismatch | TacError::UnknownTransactionType(_)) => {
                false
            }
            Rejection::Tac(_) => true,
            Rejection::UnknownTransactionType(_)
            | Rejection::KindMismatch { .. }
            | Rejection::BalanceOutOfRange { .. }
            | Rejection::BalancesDoNotAddUp { .. } => false,
        }
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rejection::Tac(TacError::Missing) => f.write_str("a confirmed record without a TAC"),
            Rejection::Tac(e) => write!(f, "{e}"),
            Rejection::UnknownTransactionType(t) => write!(f, "transaction type {t:02X} is not a load or a purchase"),
            Rejection::KindMismatch { kind, transaction_type } => {
                write!(f, "kind {kind:?} does not go with transaction type {transaction_type:02X}")
            }
            Rejection::BalanceOutOfRange { balance_fen } => {
                write!(f, "balance {balance_fen} does not fit the card's 4 signed bytes")
            }
            Rejection::BalancesDoNotAddUp { before_fen, amount_fen, after_fen } => {
                write!(f, "balance {before_fen} and amount {amount_fen} do not make balance after {after_fen}")
            }
        }
    }
}

impl std::error::Error for Rejection {}

/// A transaction's identity on its card: a re-sent record, or a `recovered` copy of a
/// `confirmed` one, has the same key. Ordered by place: sequence, counter, then time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct EntryKey {
    sequence: Sequence,
    counter: u16,
    at: DateTime,
    terminal_id: [u8; 6],
    terminal_transaction_number: u32,
    amount_fen: u32,
}

/// A kept record: a transaction of the card (committed, or maybe, for an unconfirmed one).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Entry {
    pub(crate) sequence: Sequence,
    pub(crate) counter: u16,
    pub(crate) at: DateTime,
    #[serde(with = "crate::hex_serde")]
    pub(crate) terminal_id: [u8; 6],
    pub(crate) terminal_transaction_number: u32,
    pub(crate) amount_fen: u32,
    pub(crate) kind: TapKind,
    pub(crate) transaction_type: u8,
    pub(crate) evidence: Evidence,
    pub(crate) balance_before_fen: i64,
    pub(crate) balance_after_fen: i64,
    /// When the back office received it (the age of an unconfirmed record counts from `at`).
    pub(crate) received: DateTime,
}

impl Entry {
    /// Appends the entry in the packed form's second version (`YTS2`; about 32 bytes): a byte of
    /// sequence (bit 0: 0 online, 1 offline), evidence (bits 1–2: 0 unconfirmed, 1 logged, 2
    /// proven) and kind (bits 3–4, [`kind_byte`]); counter; time (BCD); terminal ID; its
    /// number; amount (LEB128); type; balances before and after (signed LEB128); seconds from
    /// the time to the time received (signed LEB128).
    pub(crate) fn pack_into(&self, out: &mut Vec<u8>) {
        out.push(sequence_byte(self.sequence) | evidence_byte(self.evidence) << 1 | kind_byte(self.kind) << 3);
        out.extend_from_slice(&self.counter.to_be_bytes());
        out.extend_from_slice(&self.at.bcd7());
        out.extend_from_slice(&self.terminal_id);
        out.extend_from_slice(&self.terminal_transaction_number.to_be_bytes());
        push_varint(out, u64::from(self.amount_fen));
        out.push(self.transaction_type);
        push_signed(out, self.balance_before_fen);
        push_signed(out, self.balance_after_fen);
        push_signed(out, self.received.seconds_since_epoch() - self.at.seconds_since_epoch());
    }

    /// Reads what [`Entry::pack_into`] wrote (its checks are the caller's: [`Entry::check`]).
    pub(crate) fn unpack(r: &mut Reader<'_>) -> Result<Self, BytesError> {
        let offset = r.offset();
        let head = r.u8()?;
        if head >> 5 != 0 {
            return Err(Reader::error(offset, "unknown bits in a transaction's first byte"));
        }
        let sequence = sequence_of(head & 1).ok_or_else(|| Reader::error(offset, "unknown sequence"))?;
        let evidence = evidence_of(head >> 1 & 3).ok_or_else(|| Reader::error(offset, "unknown evidence"))?;
        let kind = kind_of(head >> 3 & 3);
        let (counter, at, terminal_id, terminal_transaction_number) = (r.u16()?, r.time()?, r.array()?, r.u32()?);
        let offset = r.offset();
        let amount_fen = u32::try_from(r.varint()?).map_err(|_| Reader::error(offset, "an amount over 32 bits"))?;
        let (transaction_type, balance_before_fen, balance_after_fen) = (r.u8()?, r.signed()?, r.signed()?);
        let offset = r.offset();
        let received = at.plus_seconds(r.signed()?).map_err(|_| Reader::error(offset, "not a time received"))?;
        Ok(Entry {
            sequence,
            counter,
            at,
            terminal_id,
            terminal_transaction_number,
            amount_fen,
            kind,
            transaction_type,
            evidence,
            balance_before_fen,
            balance_after_fen,
            received,
        })
    }

    /// Appends the entry in the packed form's first version (`YTS1`), 50 bytes: sequence (0
    /// online, 1 offline), counter, time (BCD), terminal ID, its number, amount, kind, type,
    /// evidence (0 unconfirmed, 1 logged, 2 proven), balances before and after, time received
    /// (BCD). Only read now; written by the tests, as shadows stored before were.
    #[cfg(test)]
    pub(crate) fn pack_v1_into(&self, out: &mut Vec<u8>) {
        out.push(sequence_byte(self.sequence));
        out.extend_from_slice(&self.counter.to_be_bytes());
        out.extend_from_slice(&self.at.bcd7());
        out.extend_from_slice(&self.terminal_id);
        out.extend_from_slice(&self.terminal_transaction_number.to_be_bytes());
        out.extend_from_slice(&self.amount_fen.to_be_bytes());
        out.push(kind_byte(self.kind));
        out.push(self.transaction_type);
        out.push(evidence_byte(self.evidence));
        out.extend_from_slice(&self.balance_before_fen.to_be_bytes());
        out.extend_from_slice(&self.balance_after_fen.to_be_bytes());
        out.extend_from_slice(&self.received.bcd7());
    }

    /// Reads the first version's 50 bytes (`pack_v1_into`; its checks are the caller's).
    pub(crate) fn unpack_v1(r: &mut Reader<'_>) -> Result<Self, BytesError> {
        let offset = r.offset();
        let sequence = sequence_of(r.u8()?).ok_or_else(|| Reader::error(offset, "unknown sequence"))?;
        let (counter, at, terminal_id) = (r.u16()?, r.time()?, r.array()?);
        let (terminal_transaction_number, amount_fen, kind, transaction_type) =
            (r.u32()?, r.u32()?, r.kind()?, r.u8()?);
        let offset = r.offset();
        let evidence = evidence_of(r.u8()?).ok_or_else(|| Reader::error(offset, "unknown evidence"))?;
        Ok(Entry {
            sequence,
            counter,
            at,
            terminal_id,
            terminal_transaction_number,
            amount_fen,
            kind,
            transaction_type,
            evidence,
            balance_before_fen: r.i64()?,
            balance_after_fen: r.i64()?,
            received: r.time()?,
        })
    }

    pub(crate) fn key(&self) -> EntryKey {
        EntryKey {
            sequence: self.sequence,
            counter: self.counter,
            at: self.at,
            terminal_id: self.terminal_id,
            terminal_transaction_number: self.terminal_transaction_number,
            amount_fen: self.amount_fen,
        }
    }

    pub(crate) fn tap_id(&self) -> TapId {
        TapId { terminal_id: self.terminal_id, number: self.terminal_transaction_number }
    }

    pub(crate) fn at_s(&self) -> i64 {
        self.at.seconds_since_epoch()
    }

    /// The record's own checks: a type of the profile, a kind that goes with it, balances the
    /// card can hold (which also keeps every sum of them far from overflowing) that add up. Kept
    /// records pass them; stored ones are checked again on reading.
    pub(crate) fn check(&self) -> Result<(), Rejection> {
        let sequence = Sequence::of_transaction_type(self.transaction_type)
            .ok_or(Rejection::UnknownTransactionType(self.transaction_type))?;
        if self.kind.is_load() != (sequence == Sequence::Online) || sequence != self.sequence {
            return Err(Rejection::KindMismatch { kind: self.kind, transaction_type: self.transaction_type });
        }
        for balance_fen in [self.balance_before_fen, self.balance_after_fen] {
            if i32::try_from(balance_fen).is_err() {
                return Err(Rejection::BalanceOutOfRange { balance_fen });
            }
        }
        let after = self.balance_before_fen.checked_add(sequence.delta_fen(self.amount_fen));
        if after != Some(self.balance_after_fen) {
            return Err(Rejection::BalancesDoNotAddUp {
                before_fen: self.balance_before_fen,
                amount_fen: self.amount_fen,
                after_fen: self.balance_after_fen,
            });
        }
        Ok(())
    }
}

/// A sequence as packed: 0 online, 1 offline.
fn sequence_byte(sequence: Sequence) -> u8 {
    match sequence {
        Sequence::Online => 0,
        Sequence::Offline => 1,
    }
}

fn sequence_of(byte: u8) -> Option<Sequence> {
    match byte {
        0 => Some(Sequence::Online),
        1 => Some(Sequence::Offline),
        _ => None,
    }
}

/// Evidence as packed: 0 unconfirmed, 1 logged, 2 proven.
fn evidence_byte(evidence: Evidence) -> u8 {
    match evidence {
        Evidence::Unconfirmed => 0,
        Evidence::Logged => 1,
        Evidence::Proven => 2,
    }
}

fn evidence_of(byte: u8) -> Option<Evidence> {
    match byte {
        0 => Some(Evidence::Unconfirmed),
        1 => Some(Evidence::Logged),
        2 => Some(Evidence::Proven),
        _ => None,
    }
}

/// The entry a record makes, or why it is rejected. `tac` must agree with the record (checked by
/// the caller): verified or failed only with a TAC, absent only without.
pub(crate) fn admit(record: &TapRecord, tac: TacCheck, received: DateTime) -> Result<Entry, Rejection> {
    let evidence = match (tac, record.status) {
        (TacCheck::Failed(e), _) => return Err(Rejection::Tac(e)),
        // A verified TAC proves the commit whatever the gate thought.
        (TacCheck::Verified, _) => Evidence::Proven,
        (TacCheck::Absent, RecordStatus::Confirmed) => return Err(Rejection::Tac(TacError::Missing)),
        (TacCheck::Absent, RecordStatus::Recovered) => Evidence::Logged,
        (TacCheck::Absent, RecordStatus::Unconfirmed) => Evidence::Unconfirmed,
    };
    let sequence = Sequence::of_transaction_type(record.transaction_type)
        .ok_or(Rejection::UnknownTransactionType(record.transaction_type))?;
    let entry = Entry {
        sequence,
        counter: record.counter,
        at: record.at,
        terminal_id: record.terminal_id,
        terminal_transaction_number: record.terminal_transaction_number,
        amount_fen: record.amount_fen,
        kind: record.kind,
        transaction_type: record.transaction_type,
        evidence,
        balance_before_fen: record.balance_before_fen,
        balance_after_fen: record.balance_after_fen,
        received,
    };
    entry.check()?;
    Ok(entry)
}

/// A rejected record's identity, so that a re-sent one is not counted twice: the transaction's
/// and what the record says of it (copies with other balances or kinds are other records).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) struct RejectedKey {
    transaction_type: u8,
    kind: OrderedKind,
    counter: u16,
    at: DateTime,
    #[serde(with = "crate::hex_serde")]
    terminal_id: [u8; 6],
    terminal_transaction_number: u32,
    amount_fen: u32,
    balance_before_fen: i64,
    balance_after_fen: i64,
}

impl RejectedKey {
    /// Appends the key's 41 bytes: type, kind, counter, time (BCD), terminal ID, its number,
    /// amount, balances before and after.
    pub(crate) fn pack_into(&self, out: &mut Vec<u8>) {
        out.push(self.transaction_type);
        out.push(kind_byte(self.kind.0));
        out.extend_from_slice(&self.counter.to_be_bytes());
        out.extend_from_slice(&self.at.bcd7());
        out.extend_from_slice(&self.terminal_id);
        out.extend_from_slice(&self.terminal_transaction_number.to_be_bytes());
        out.extend_from_slice(&self.amount_fen.to_be_bytes());
        out.extend_from_slice(&self.balance_before_fen.to_be_bytes());
        out.extend_from_slice(&self.balance_after_fen.to_be_bytes());
    }

    /// Reads what [`RejectedKey::pack_into`] wrote.
    pub(crate) fn unpack(r: &mut Reader<'_>) -> Result<Self, BytesError> {
        Ok(RejectedKey {
            transaction_type: r.u8()?,
            kind: OrderedKind(r.kind()?),
            counter: r.u16()?,
            at: r.time()?,
            terminal_id: r.array()?,
            terminal_transaction_number: r.u32()?,
            amount_fen: r.u32()?,
            balance_before_fen: r.i64()?,
            balance_after_fen: r.i64()?,
        })
    }

    pub(crate) fn of(record: &TapRecord) -> Self {
        RejectedKey {
            transaction_type: record.transaction_type,
            kind: OrderedKind(record.kind),
            counter: record.counter,
            at: record.at,
            terminal_id: record.terminal_id,
            terminal_transaction_number: record.terminal_transaction_number,
            amount_fen: record.amount_fen,
            balance_before_fen: record.balance_before_fen,
            balance_after_fen: record.balance_after_fen,
        }
    }
}

/// A kind with an order, for keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
struct OrderedKind(TapKind);

impl Ord for OrderedKind {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // A fieldless enum's discriminant: the declaration order.
        (self.0 as u8).cmp(&(other.0 as u8))
    }
}

impl PartialOrd for OrderedKind {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
impl Entry {
    /// A proven purchase of 3 yuan from 10 at a Beijing gate (its number the counter), for tests.
    pub(crate) fn purchase_for_tests(sequence: Sequence, counter: u16, at: DateTime, received: DateTime) -> Entry {
        Entry {
            sequence,
            counter,
            at,
            terminal_id: [0x10, 0, 0, 0x0C, 0, 1],
            terminal_transaction_number: u32::from(counter),
            amount_fen: 300,
            kind: TapKind::Single,
            transaction_type: 6,
            evidence: Evidence::Proven,
            balance_before_fen: 1_000,
            balance_after_fen: 700,
            received,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(year: u16, month: u8, day: u8, hour: u8) -> DateTime {
        DateTime::new(year, month, day, hour, 59, 59).expect("a time")
    }

    /// Every field at its edges reads back as it was packed: times at the first and last years a
    /// time holds, received long before or after the tap, balances at the ends of what a card
    /// holds (a purchase of `u32::MAX` from `i32::MAX` ends at `i32::MIN`), each evidence and kind.
    #[test]
    fn an_entry_at_its_edges_packs_and_reads_back_the_same() {
        let purchase = Entry {
            sequence: Sequence::Offline,
            counter: u16::MAX,
            at: time(9999, 12, 31, 23),
            terminal_id: [0xFF; 6],
            terminal_transaction_number: u32::MAX,
            amount_fen: u32::MAX,
            kind: TapKind::Exit,
            transaction_type: 9,
            evidence: Evidence::Unconfirmed,
            balance_before_fen: i64::from(i32::MAX),
            balance_after_fen: i64::from(i32::MIN),
            received: time(0, 1, 1, 0),
        };
        let load = Entry {
            sequence: Sequence::Online,
            counter: 0,
            at: time(0, 1, 1, 0),
            terminal_id: [0; 6],
            terminal_transaction_number: 0,
            amount_fen: 0,
            kind: TapKind::Load,
            transaction_type: 2,
            evidence: Evidence::Proven,
            balance_before_fen: -1,
            balance_after_fen: -1,
            received: time(9999, 12, 31, 23),
        };
        let single =
            Entry { kind: TapKind::Single, evidence: Evidence::Logged, received: purchase.at, ..purchase.clone() };
        let entry = Entry { kind: TapKind::Entry, ..single.clone() };
        for original in [purchase, load, single, entry] {
            assert_eq!(original.check(), Ok(()), "{original:?} is one a shadow can hold");
            let mut out = Vec::new();
            original.pack_into(&mut out);
            let mut r = Reader::new(&out);
            assert_eq!(Entry::unpack(&mut r).as_ref(), Ok(&original));
            assert_eq!(r.finish("entry"), Ok(()));
        }
    }

    #[test]
    fn a_time_received_out_of_the_years_is_refused_at_its_offset() {
        let entry = Entry::purchase_for_tests(Sequence::Offline, 1, time(2026, 12, 7, 8), time(2026, 12, 7, 9));
        let mut out = Vec::new();
        entry.pack_into(&mut out);
        // The time received is last: its 3,600 s zigzag-doubled, 7,200 in two bytes.
        let at = out.len() - 2;
        assert_eq!(&out[at..], &[0x80 | (7_200 % 128) as u8, (7_200 / 128) as u8]);
        out.truncate(at);
        crate::bytes::push_signed(&mut out, i64::MAX);
        let error = Entry::unpack(&mut Reader::new(&out)).expect_err("refused");
        assert_eq!((error.offset, error.why.as_str()), (at, "not a time received"));
    }
}
