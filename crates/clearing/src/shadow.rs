//! Shadow balances and fraud flags: per card, the sequences of counters and balances its records
//! show, the settlement of the gates' unconfirmed records, and what does not add up.
//!
//! The principal type is [`Shadow`], one card's state; [`ShadowBook`] holds one per card. Feed
//! [`Shadow::handle_record`] one record at a time with the outcome of its TAC check (the caller
//! runs `yitong_record::verify_tac`; [`TacCheck::from`] takes its result) and the time it was
//! received. The [`Answer`] says what the record is ([`Disposition`]), which unconfirmed records
//! it settled ([`Settlement`]) and which [`Flag`]s it raised or cleared. [`hotlist_reason`] is the
//! policy that turns proven fraud into a hotlist entry. Sans-IO and deterministic: no clock (the
//! caller passes `received` and `now`), no storage.
//!
//! # The card
//!
//! A card ([`CardId`]: issuer ID and serial) has one balance and two counters: the online counter
//! numbers loads (which only add), the offline counter purchases (which only take; composite
//! entries and exits included, entries of 0 fen too: they move the counter). A record's counter
//! is the one INITIALIZE returned plus one, so an honest card's loads are numbered 1, 2, 3, … and
//! its purchases too, independently. The [`Sequence`] comes from the record's transaction type
//! (which its TAC covers), and the record's `kind` must agree. Every record, committed or not,
//! carries the card's state INITIALIZE read before it: its sequence's counter (its counter − 1)
//! and the balance (its balance before) — a *snapshot*. Committed records also show the state
//! after. The first record of a card may have any counter: its history may predate the back
//! office.
//!
//! # Records: accepted, duplicate, rejected
//!
//! - A record whose TAC check failed is **rejected** with the reason and kept by the caller for
//!   audit. Records of an unknown transaction type, a `kind` against the type, a balance beyond
//!   the card's 4 signed bytes, or balances that do not add up (after ≠ before ± amount) are
//!   rejected too. A `confirmed` record without a TAC is a TAC failure
//!   ([`TacError::Missing`](yitong_record::TacError::Missing)). Failures that are the card's
//!   ([`Rejection::is_tac_failure`]: a TAC mismatch, a missing TAC) are counted per card, once per
//!   record: a re-sent rejected record is recognised (`again`).
//! - A transaction's identity is its card, sequence, counter, terminal ID, terminal transaction
//!   number, amount and time. A record of an identity already held is a **duplicate**, not
//!   counted twice — a re-sent record, or a `recovered` copy of a `confirmed` one. A copy with
//!   stronger evidence (a verified TAC, or the card's log, for an unconfirmed record) replaces
//!   the held one (`upgraded`); copies whose balances differ are reported (`altered`).
//! - Otherwise the record is **accepted**, with its [`Evidence`]: *proven* (TAC verified),
//!   *logged* (`recovered` without a TAC: the gate found it in the card's log) or *unconfirmed*.
//!
//! # Order
//!
//! Within a sequence, counters order transactions. Across sequences only time can: the clocks of
//! gates, top-up terminals and the platform are taken to agree within [`CLOCK_SKEW_S_MAX`], so a
//! transaction truly before another is never stamped more than that after it. A transaction of the
//! other sequence is *surely* before (after) a transaction when stamped more than the tolerance
//! before (after) it; within the tolerance the order is unknown. A counter of the other sequence
//! with no committed record may hide a transaction anywhere between the records of the counters
//! around it (before its first record, after its last). So between two transactions `a` and `b`
//! of one sequence, what the other sequence did is **known** when every one of its transactions
//! is surely before `a`, surely after `b` or surely between — none hidden, none maybe-committed
//! (pending) near — and then it moved the balance by the sum of those surely between; otherwise
//! it is **unknown**. Even unknown, its sign is known: loads only add, purchases only take.
//!
//! # Settling unconfirmed records
//!
//! An unconfirmed record `u` with counter `c` committed if and only if the card's counter moved
//! to `c` with it. Its [`Verdict`] is the first of these that applies (U1–U3); each reads the
//! records and their snapshots only, never another unconfirmed record's verdict:
//!
//! - **U1, the counter reused.** A proven or logged record of another transaction with counter
//!   `c` took the counter: `u` is **voided**. So is `u` when another record of counter `c` is
//!   later (by time, then tap ID): its snapshot shows the counter had not moved after `u`.
//! - **U2, the next counter.** The first record `r` of counter `c + 1` (of any standing: its
//!   snapshot is real) shows the counter moved and what balance it left. If `r`'s balance before
//!   is `u`'s balance after, `u` is **charged**. Otherwise, if what the other sequence did between
//!   `u` and `r` is known (`d`), `u` is charged when `r` found `u`'s balance after + `d` and
//!   **voided** when not. If unknown, `u` is voided when `r`'s balance moved from `u`'s balance
//!   after in the direction the other sequence cannot move it; a `u` of 0 fen is charged (the
//!   counter moved, no money is at stake); else `r` does not decide.
//! - **U3, a later record of the other sequence** (a load after a purchase, or the reverse): the
//!   first one, by counter, surely after `u`, when no record of the other sequence is stamped
//!   within the tolerance of `u` and no record of `u`'s sequence with a higher counter comes
//!   before it. Its balance before = `u`'s balance after: **charged**; = `u`'s balance before:
//!   **voided**, provided the other sequence's counter below it has a proven or logged record
//!   surely before `u` (or it is counter 1: nothing could have brought the balance back). A `u`
//!   of 0 fen cannot be decided by a balance: it stays pending.
//! - Otherwise `u` is **pending**, with its age ([`PendingRecord::age_at_receipt_s`],
//!   [`PendingRecord::age_s`]).
//!
//! A balance can be matched by coincidence — an unseen record of counter `c` for the same amount
//! (the same bus fare retried) makes `u` look charged under U2 or U3. When that record arrives,
//! U1 voids `u`: a TAC or the card's log outranks a balance, and the [`Settlement`] says so
//! (`previous: Charged`, `verdict: Voided`) for the clearing to correct.
//!
//! # Committed transactions, flags, balance
//!
//! The card's committed transactions are its proven and logged records and its unconfirmed ones
//! charged. Per counter one is kept in the sequence (the strongest evidence, then the first by
//! time and tap ID); any other makes a flag:
//!
//! - [`Flag::Clone`]: two different transactions, both with verified TACs, on one counter.
//! - [`Flag::CounterConflict`]: the same with one only logged (a gate's word): not proof.
//! - [`Flag::CounterGap`]: counters with no committed or pending record, between the lowest
//!   record of the sequence and a higher one (whose snapshot shows the counter moved past them).
//!   A missing upload: wait, then chase the gates; cleared when the records arrive.
//! - [`Flag::BalanceBreak`] (rule B): for transactions `a` and `b` of consecutive counters of one
//!   sequence, if what the other sequence did between them is known (`d`), `b`'s balance before
//!   must be `a`'s balance after + `d`; if unknown, it must not have moved in the direction the
//!   other sequence cannot move it (after two purchases only loads can come between, so the
//!   balance cannot have dropped; after two loads, not risen). A break is tampering with the
//!   card or the record (a purchase's TAC covers neither its counter nor its balances).
//! - [`Flag::TacFailures`]: [`TAC_FAILURE_THRESHOLD`] records of the card failed their TAC.
//!
//! The shadow balance ([`Shadow::balance_fen`]) is the balance after the card's latest committed
//! transaction: the later of the two sequences' highest counters — the one whose balance before
//! is what the other left, when only one way round chains (and not against the clocks: not
//! stamped surely before the other), else the later stamp.
//!
//! # Policy
//!
//! [`hotlist_reason`]: a clone, a balance break or repeated TAC failures are proven fraud and
//! give a hotlist reason; a counter gap is chased instead and a counter conflict looked into.
//!
//! # Storage
//!
//! A [`Shadow`] serializes with serde: the card, its transactions and the identities of its
//! rejected records (JSON with hex IDs and `YYYY-MM-DD HH:MM:SS` times); [`Shadow::pack`] writes
//! the same in a compact binary form (about 32 bytes a transaction, the service's storage). The
//! settlements, flags and balance are derived again on reading, and stored transactions are
//! checked again. The
//! derived state is a function of the set of records, so a shadow is equally rebuilt by replaying
//! the card's accepted and rejected records in any order. It grows with the card's history:
//! folding a settled past into a checkpoint is not done yet.
//!
//! ```
//! use yitong_clearing::shadow::{CardId, Disposition, Shadow, TacCheck, Verdict};
//! use yitong_record::{DateTime, RecordStatus, TapKind, TapRecord};
//!
//! let at = DateTime::new(2026, 11, 25, 8, 30, 0).unwrap();
//! let exit = TapRecord {
//!     status: RecordStatus::Unconfirmed, kind: TapKind::Exit, transaction_type: 9,
//!     card_serial: [0x10, 0, 0, 0, 0, 0, 0, 0x12, 0x34, 0x56], issuer_id: [0, 0, 0x10, 0, 0, 0, 0, 1],
//!     counter: 7, amount_fen: 400, balance_before_fen: 1_000, balance_after_fen: 600,
//!     terminal_id: [0x10, 0, 0, 0x0C, 0, 1], terminal_transaction_number: 42, at,
//!     city: "beijing".into(), city_code: 0x1000, station: "国贸".into(), line: 1, station_code: 12,
//!     card_random: [1, 2, 3, 4], key_version: 1, algorithm_id: 0, mac2: None, tac: None,
//! };
//! let mut shadow = Shadow::new(CardId::of(&exit));
//! let received = at.plus_seconds(60).unwrap();
//! let answer = shadow.handle_record(&exit, TacCheck::Absent, received).unwrap();
//! assert_eq!(answer.disposition, Disposition::Accepted);
//! assert_eq!(shadow.pending()[0].age_at_receipt_s(), 60);
//!
//! // The card's next purchase has counter 8 and found 600 fen: the exit was charged.
//! let next = TapRecord {
//!     status: RecordStatus::Confirmed, counter: 8, amount_fen: 0, balance_before_fen: 600,
//!     balance_after_fen: 600, kind: TapKind::Entry, terminal_transaction_number: 43,
//!     at: at.plus_seconds(3_600).unwrap(), tac: Some([9; 4]), ..exit.clone()
//! };
//! let answer = shadow.handle_record(&next, TacCheck::Verified, received).unwrap();
//! assert_eq!(answer.settlements[0].verdict, Verdict::Charged);
//! assert_eq!(shadow.balance_fen(), Some(600));
//! ```

mod book;
mod entries;
mod entry;
mod flag;
mod packed;
mod settle;
mod timeline;
mod view;

#[cfg(test)]
mod tests;

pub use book::{Answer, Disposition, PendingRecord, Settlement, Shadow, ShadowBook, ShadowError, Transaction};
pub use entry::{CardId, Evidence, Rejection, Sequence, TacCheck};
pub use flag::{hotlist_reason, Flag};
pub use packed::PACKED_SHADOW_MAGIC;
pub use settle::Verdict;

/// The TAC failures (counted once per record) at which a card is flagged.
pub const TAC_FAILURE_THRESHOLD: u32 = 3;

/// How far apart the clocks of gates, top-up terminals and the platform may be, in seconds:
/// across sequences, stamps closer than this do not order two transactions.
pub const CLOCK_SKEW_S_MAX: i64 = 300;

const _: () = assert!(TAC_FAILURE_THRESHOLD >= 1);
const _: () = assert!(CLOCK_SKEW_S_MAX >= 0);
