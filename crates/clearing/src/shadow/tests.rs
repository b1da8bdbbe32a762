//! The rules on hand-built card histories. Expected balances are worked out by hand in the
//! comments; TACs are dummies (verification is the caller's: the tests pass its outcome).

use yitong_profile::DateTime;
use yitong_record::{RecordStatus, TacError, TapKind, TapRecord};

use super::*;

const ISSUER: [u8; 8] = [0, 0, 0x10, 0, 0, 0, 0, 1];
const SERIAL: [u8; 10] = [0x10, 0, 0, 0, 0, 0, 0, 0x12, 0x34, 0x56];
const GATE: [u8; 6] = [0x10, 0, 0, 0x0C, 0, 1];
const TOP_UP: [u8; 6] = [0x10, 0, 0xFF, 0xFF, 0, 2];

/// An honest card: each transaction gets the next counter of its sequence and the balance the
/// card holds, an hour after the previous one.
struct History {
    balance_fen: i64,
    online: u16,
    offline: u16,
    at: DateTime,
    number: u32,
}

impl History {
    /// A card holding `balance_fen` whose counters stand at `online` and `offline`.
    fn new(balance_fen: i64, online: u16, offline: u16) -> Self {
        History { balance_fen, online, offline, at: DateTime::new(2026, 11, 2, 7, 0, 0).unwrap(), number: 0 }
    }

    fn record(&mut self, kind: TapKind, amount_fen: u32, status: RecordStatus, commits: bool) -> TapRecord {
        self.at = self.at.plus_seconds(3_600).unwrap();
        self.number += 1;
        let load = kind.is_load();
        let counter = if load { self.online + 1 } else { self.offline + 1 };
        let delta = if load { i64::from(amount_fen) } else { -i64::from(amount_fen) };
        let record = TapRecord {
            status,
            kind,
            transaction_type: match kind {
                TapKind::Load => 2,
                TapKind::Single => 6,
                TapKind::Entry | TapKind::Exit => 9,
            },
            card_serial: SERIAL,
            issuer_id: ISSUER,
            counter,
            amount_fen,
            balance_before_fen: self.balance_fen,
            balance_after_fen: self.balance_fen + delta,
            terminal_id: if load { TOP_UP } else { GATE },
            terminal_transaction_number: self.number,
            at: self.at,
            city: "beijing".into(),
            city_code: 0x1000,
            station: String::new(),
            line: 1,
            station_code: 12,
            card_random: [1, 2, 3, 4],
            key_version: 1,
            algorithm_id: 0,
            mac2: None,
            tac: (status != RecordStatus::Unconfirmed).then_some([0xAA; 4]),
        };
        if commits {
            self.balance_fen += delta;
            if load {
                self.online = counter;
            } else {
                self.offline = counter;
            }
        }
        record
    }

    fn load(&mut self, amount_fen: u32) -> TapRecord {
        self.record(TapKind::Load, amount_fen, RecordStatus::Confirmed, true)
    }

    fn purchase(&mut self, amount_fen: u32) -> TapRecord {
        self.record(TapKind::Single, amount_fen, RecordStatus::Confirmed, true)
    }

    /// A transaction the gate lost the answer to; `commits`: whether the card committed it.
    fn unconfirmed(&mut self, kind: TapKind, amount_fen: u32, commits: bool) -> TapRecord {
        self.record(kind, amount_fen, RecordStatus::Unconfirmed, commits)
    }
}

fn card() -> CardId {
    CardId { issuer_id: ISSUER, card_serial: SERIAL }
}

/// The TAC check an honest record passes.
fn check(record: &TapRecord) -> TacCheck {
    if record.tac.is_some() {
        TacCheck::Verified
    } else {
        TacCheck::Absent
    }
}

/// Feeds `record`, received 5 minutes after the tap.
fn feed(shadow: &mut Shadow, record: &TapRecord) -> Answer {
    feed_checked(shadow, record, check(record))
}

fn feed_checked(shadow: &mut Shadow, record: &TapRecord, tac: TacCheck) -> Answer {
    shadow.handle_record(record, tac, record.at.plus_seconds(300).unwrap()).unwrap()
}

fn fed(records: &[&TapRecord]) -> Shadow {
    let mut shadow = Shadow::new(card());
    for r in records {
        feed(&mut shadow, r);
    }
    shadow
}

fn verdicts(shadow: &Shadow) -> Vec<(u16, Verdict)> {
    shadow
        .transactions()
        .iter()
        .filter(|t| t.evidence == Evidence::Unconfirmed)
        .map(|t| (t.counter, t.verdict))
        .collect()
}

fn flags(shadow: &Shadow) -> Vec<Flag> {
    shadow.flags().cloned().collect()
}

#[test]
fn duplicates_are_not_counted_twice() {
    let mut h = History::new(1_000, 0, 0);
    let load = h.load(500); // 1 000 → 1 500
    let ride = h.purchase(300); // 1 500 → 1 200
    let mut shadow = fed(&[&load, &ride]);
    assert_eq!(shadow.balance_fen(), Some(1_200));

    let again = feed(&mut shadow, &ride);
    assert_eq!(again.disposition, Disposition::Duplicate { upgraded: false, altered: false });
    assert!(again.settlements.is_empty() && again.raised.is_empty() && again.cleared.is_empty());
    let recovered = TapRecord { status: RecordStatus::Recovered, ..ride.clone() };
    assert_eq!(feed(&mut shadow, &recovered).disposition, Disposition::Duplicate { upgraded: false, altered: false });
    assert_eq!(feed(&mut shadow, &load).disposition, Disposition::Duplicate { upgraded: false, altered: false });

    assert_eq!(shadow.transactions().len(), 2);
    assert_eq!(shadow.balance_fen(), Some(1_200));
    assert_eq!(flags(&shadow), []);
}

#[test]
fn an_altered_copy_is_still_the_same_transaction() {
    let mut h = History::new(1_000, 0, 0);
    let ride = h.purchase(300);
    let mut shadow = fed(&[&ride]);
    let altered = TapRecord { balance_before_fen: 5_000, balance_after_fen: 4_700, ..ride.clone() };
    assert_eq!(feed(&mut shadow, &altered).disposition, Disposition::Duplicate { upgraded: false, altered: true });
    assert_eq!(shadow.balance_fen(), Some(700));
}

#[test]
fn a_proven_copy_of_an_unconfirmed_record_charges_it() {
    let mut h = History::new(1_000, 0, 0);
    let exit = h.unconfirmed(TapKind::Exit, 300, true);
    let mut shadow = fed(&[&exit]);
    assert_eq!(verdicts(&shadow), [(1, Verdict::Pending)]);
    let proven = TapRecord { status: RecordStatus::Recovered, tac: Some([0xAA; 4]), ..exit.clone() };
    let answer = feed(&mut shadow, &proven);
    assert_eq!(answer.disposition, Disposition::Duplicate { upgraded: true, altered: false });
    assert_eq!(answer.settlements.len(), 1);
    assert_eq!((answer.settlements[0].previous, answer.settlements[0].verdict), (Verdict::Pending, Verdict::Charged));
    assert_eq!(shadow.balance_fen(), Some(700));
    // And an unconfirmed copy of a proven record is a plain duplicate.
    assert_eq!(feed(&mut shadow, &exit).disposition, Disposition::Duplicate { upgraded: false, altered: false });
}

#[test]
fn an_unconfirmed_purchase_is_charged_by_the_next_purchase_at_the_next_counter() {
    let mut h = History::new(1_000, 0, 4);
    let exit = h.unconfirmed(TapKind::Exit, 300, true); // counter 5, 1 000 → 700 (committed)
    let next = h.purchase(200); // counter 6, found 700
    assert_eq!((exit.counter, next.counter, next.balance_before_fen), (5, 6, 700));

    let mut shadow = Shadow::new(card());
    let first = feed(&mut shadow, &exit);
    assert_eq!(first.disposition, Disposition::Accepted);
    assert!(first.settlements.is_empty(), "nothing decides it yet");
    assert_eq!(shadow.pending().len(), 1);

    let answer = feed(&mut shadow, &next);
    assert_eq!(
        answer.settlements,
        [Settlement {
            tap_id: exit.tap_id(),
            sequence: Sequence::Offline,
            counter: 5,
            amount_fen: 300,
            previous: Verdict::Pending,
            verdict: Verdict::Charged,
            evidence: Some(next.tap_id()),
        }]
    );
    assert!(shadow.pending().is_empty());
    assert_eq!(shadow.balance_fen(), Some(500)); // 700 − 200
    assert_eq!(flags(&shadow), []);
}

#[test]
fn an_unconfirmed_purchase_is_voided_by_a_purchase_reusing_its_counter() {
    let mut h = History::new(1_000, 0, 4);
    let exit = h.unconfirmed(TapKind::Exit, 300, false); // counter 5, never committed
    let retry = h.purchase(200); // counter 5 again, found 1 000
    assert_eq!((retry.counter, retry.balance_before_fen), (5, 1_000));

    let mut shadow = fed(&[&exit]);
    let answer = feed(&mut shadow, &retry);
    assert_eq!(answer.settlements.len(), 1);
    assert_eq!(
        (answer.settlements[0].verdict, answer.settlements[0].evidence),
        (Verdict::Voided, Some(retry.tap_id()))
    );
    assert_eq!(shadow.balance_fen(), Some(800));
    assert_eq!(flags(&shadow), [], "a reused counter is no clone");

    // In the other order, the unconfirmed record is voided as it arrives.
    let mut shadow = fed(&[&retry]);
    let answer = feed(&mut shadow, &exit);
    assert_eq!(answer.settlements.len(), 1);
    assert_eq!(answer.settlements[0].verdict, Verdict::Voided);
    assert_eq!(shadow.balance_fen(), Some(800));
}

#[test]
fn a_later_unconfirmed_attempt_at_the_same_counter_voids_the_earlier() {
    let mut h = History::new(1_000, 0, 0);
    let first = h.unconfirmed(TapKind::Exit, 300, false); // counter 1, not committed
    let second = h.unconfirmed(TapKind::Exit, 300, true); // counter 1 again, committed: 1 000 → 700
    let next = h.purchase(0); // counter 2, found 700
    let shadow = fed(&[&next, &second, &first]);
    let by_tap: Vec<_> = shadow.transactions().iter().map(|t| (t.tap_id, t.verdict)).collect();
    assert!(by_tap.contains(&(first.tap_id(), Verdict::Voided)));
    assert!(by_tap.contains(&(second.tap_id(), Verdict::Charged)));
    assert_eq!(shadow.balance_fen(), Some(700));
}

#[test]
fn a_later_load_decides_by_its_balance() {
    // Committed: the load found 1 000 − 300 = 700.
    let mut h = History::new(1_000, 0, 0);
    let exit = h.unconfirmed(TapKind::Exit, 300, true);
    let load = h.load(500);
    assert_eq!(load.balance_before_fen, 700);
    let mut shadow = fed(&[&exit]);
    let answer = feed(&mut shadow, &load);
    assert_eq!(
        (answer.settlements[0].verdict, answer.settlements[0].evidence),
        (Verdict::Charged, Some(load.tap_id()))
    );
    assert_eq!(shadow.balance_fen(), Some(1_200));

    // Not committed: the load found 1 000, and the load before it (counter 3) came before the
    // exit, so nothing unseen could have brought the balance back.
    let mut h = History::new(1_000, 2, 0);
    let earlier = h.load(100); // online 3: 1 000 → 1 100
    let exit = h.unconfirmed(TapKind::Exit, 300, false);
    let load = h.load(500); // online 4, found 1 100
    assert_eq!(load.balance_before_fen, exit.balance_before_fen);
    let shadow = fed(&[&earlier, &exit, &load]);
    assert_eq!(verdicts(&shadow), [(1, Verdict::Voided)]);
    assert_eq!(shadow.balance_fen(), Some(1_600));

    // Without the load below it, an unseen load could have been the 300 fen: pending.
    let shadow = fed(&[&exit, &load]);
    assert_eq!(verdicts(&shadow), [(1, Verdict::Pending)]);
}

#[test]
fn an_unconfirmed_purchase_of_0_fen_stays_pending_with_its_age() {
    let mut h = History::new(1_000, 0, 0);
    let entry = h.unconfirmed(TapKind::Entry, 0, true);
    let load = h.load(500);
    let mut shadow = Shadow::new(card());
    shadow.handle_record(&entry, TacCheck::Absent, entry.at.plus_seconds(90).unwrap()).unwrap();
    feed(&mut shadow, &load);
    let pending = shadow.pending();
    assert_eq!(pending.len(), 1);
    assert_eq!((pending[0].tap_id, pending[0].counter, pending[0].amount_fen), (entry.tap_id(), 1, 0));
    assert_eq!(pending[0].age_at_receipt_s(), 90);
    let now = entry.at.plus_seconds(2 * 3_600).unwrap();
    assert_eq!(pending[0].age_s(&now), 7_200);

    // The next purchase's counter decides it: 0 fen, so no money is at stake.
    let next = h.purchase(100);
    let answer = feed(&mut shadow, &next);
    assert_eq!(answer.settlements[0].verdict, Verdict::Charged);
    assert!(shadow.pending().is_empty());
}

#[test]
fn a_charge_from_a_balance_is_undone_when_the_counter_turns_out_taken() {
    // The gate's exit at counter 1 did not commit; the rider paid the same fare at another gate
    // (counter 1 again), whose record comes late. Counter 2's balance looks like the first one's.
    let mut h = History::new(1_000, 0, 0);
    let lost = h.unconfirmed(TapKind::Single, 200, false);
    let paid = h.purchase(200); // counter 1: 1 000 → 800
    let next = h.purchase(100); // counter 2, found 800
    let mut shadow = fed(&[&lost, &next]);
    assert_eq!(verdicts(&shadow), [(1, Verdict::Charged)]);
    let answer = feed(&mut shadow, &paid);
    assert_eq!((answer.settlements[0].previous, answer.settlements[0].verdict), (Verdict::Charged, Verdict::Voided));
    assert_eq!(shadow.balance_fen(), Some(700));
}

#[test]
fn a_gap_is_raised_then_cleared_when_the_missing_record_arrives() {
    let mut h = History::new(10_000, 0, 0);
    let rides: Vec<TapRecord> = (0..5).map(|_| h.purchase(100)).collect(); // counters 1..=5
    let gap = |first, last| Flag::CounterGap { sequence: Sequence::Offline, first, last };

    let mut shadow = fed(&[&rides[0]]);
    let answer = feed(&mut shadow, &rides[4]);
    assert_eq!(answer.raised, [gap(2, 4)]);
    let answer = feed(&mut shadow, &rides[2]);
    assert_eq!(
        (answer.cleared.as_slice(), answer.raised.as_slice()),
        ([gap(2, 4)].as_slice(), [gap(2, 2), gap(4, 4)].as_slice())
    );
    let answer = feed(&mut shadow, &rides[3]);
    assert_eq!((answer.cleared.as_slice(), answer.raised.as_slice()), ([gap(4, 4)].as_slice(), [].as_slice()));
    let answer = feed(&mut shadow, &rides[1]);
    assert_eq!(answer.cleared, [gap(2, 2)]);
    assert_eq!(flags(&shadow), []);
    assert_eq!(shadow.balance_fen(), Some(9_500));
    // Counters below the first record seen are the card's earlier history, not a gap.
    assert_eq!(rides[0].counter, 1);
    assert_eq!(flags(&fed(&[&rides[3], &rides[4]])), []);
}

#[test]
fn a_voided_record_leaves_its_counter_missing_when_a_later_one_shows_it_used() {
    // Counter 2's balance says the unconfirmed exit did not commit, yet counter 1 was used:
    // the record that used it is missing.
    let mut h = History::new(1_000, 0, 0);
    let exit = h.unconfirmed(TapKind::Exit, 300, false);
    let paid = h.purchase(500); // counter 1: 1 000 → 500 (its record is late)
    let next = h.purchase(100); // counter 2, found 500
    let load_before = {
        let mut g = History::new(0, 0, 0);
        g.at = DateTime::new(2026, 11, 2, 5, 0, 0).unwrap();
        g.load(1_000) // online 1 at 06:00, 0 → 1 000
    };
    let load_after = {
        let mut g = History::new(400, 1, 2);
        g.at = next.at;
        g.load(100) // online 2, after everything
    };
    let mut shadow = fed(&[&load_before, &exit, &next, &load_after]);
    // No load between the exit and counter 2: had it committed, counter 2 would have found 700.
    assert_eq!(verdicts(&shadow), [(1, Verdict::Voided)]);
    assert_eq!(flags(&shadow), [Flag::CounterGap { sequence: Sequence::Offline, first: 1, last: 1 }]);
    let answer = feed(&mut shadow, &paid);
    assert_eq!(answer.cleared.len(), 1);
    assert_eq!(flags(&shadow), []);
}

#[test]
fn a_balance_that_drops_between_two_purchases_is_a_break() {
    // Only loads can come between two purchases: a lower balance before is always a break.
    let mut h = History::new(1_000, 0, 0);
    let first = h.purchase(100); // 1 000 → 900
    let mut second = h.purchase(100); // found 900
    second.balance_before_fen = 850;
    second.balance_after_fen = 750;
    let shadow = fed(&[&first, &second]);
    let expected = Flag::BalanceBreak {
        sequence: Sequence::Offline,
        counter: 2,
        tap_id: second.tap_id(),
        left_fen: 900,
        between_fen: None,
        found_fen: 850,
    };
    assert_eq!(flags(&shadow), std::slice::from_ref(&expected));
    assert!(hotlist_reason(&expected).is_some_and(|r| r.contains("balance break")));
}

#[test]
fn a_balance_that_rises_between_two_purchases_is_a_break_once_no_load_can_explain_it() {
    let mut h = History::new(0, 0, 0);
    let load = h.load(1_000); // online 1: 0 → 1 000
    let first = h.purchase(100); // offline 1: → 900
    let mut second = h.purchase(100);
    second.balance_before_fen = 5_900; // tampered: +5 000 without a load
    second.balance_after_fen = 5_800;
    let mut shadow = fed(&[&load, &first, &second]);
    // A load after the last one seen could explain it: not decidable yet.
    assert_eq!(flags(&shadow), []);
    // The card's next load is online counter 2, after the second purchase: no load between.
    let mut g = History::new(5_800, 1, 2);
    g.at = second.at;
    let next_load = g.load(100);
    let answer = feed(&mut shadow, &next_load);
    assert_eq!(
        answer.raised,
        [
            // Between the two loads only purchases came, yet the balance rose.
            Flag::BalanceBreak {
                sequence: Sequence::Online,
                counter: 2,
                tap_id: next_load.tap_id(),
                left_fen: 1_000,
                between_fen: None,
                found_fen: 5_800,
            },
            Flag::BalanceBreak {
                sequence: Sequence::Offline,
                counter: 2,
                tap_id: second.tap_id(),
                left_fen: 900,
                between_fen: Some(0),
                found_fen: 5_900,
            }
        ]
    );
}

#[test]
fn a_load_between_two_purchases_is_followed_through() {
    let mut h = History::new(0, 0, 0);
    let records = [h.load(1_000), h.purchase(100), h.load(500), h.purchase(100), h.load(50)];
    let shadow = fed(&records.iter().collect::<Vec<_>>());
    assert_eq!(flags(&shadow), []);
    assert_eq!(shadow.balance_fen(), Some(1_350)); // 1 000 − 100 + 500 − 100 + 50
                                                   // The same with the load stamped within the clock tolerance of the second purchase.
    let mut close = records.clone();
    close[2].at = close[3].at.plus_seconds(-60).unwrap();
    assert_eq!(flags(&fed(&close.iter().collect::<Vec<_>>())), []);
    // A wrong balance after a known load is a break.
    let mut tampered = records.clone();
    tampered[3].balance_before_fen += 1;
    tampered[3].balance_after_fen += 1;
    assert!(matches!(
        flags(&fed(&tampered.iter().collect::<Vec<_>>()))[..],
        [Flag::BalanceBreak { counter: 2, left_fen: 900, between_fen: Some(500), found_fen: 1_401, .. }]
    ));
}

#[test]
fn a_balance_that_rises_between_two_loads_is_a_break() {
    // Only purchases can come between two loads.
    let mut h = History::new(0, 0, 0);
    let first = h.load(1_000);
    let mut second = h.load(500);
    second.balance_before_fen = 1_200;
    second.balance_after_fen = 1_700;
    let shadow = fed(&[&first, &second]);
    assert!(matches!(
        flags(&shadow)[..],
        [Flag::BalanceBreak {
            sequence: Sequence::Online,
            counter: 2,
            left_fen: 1_000,
            between_fen: None,
            found_fen: 1_200,
            ..
        }]
    ));
}

#[test]
fn two_proven_transactions_on_one_counter_are_a_clone() {
    let mut h = History::new(1_000, 0, 0);
    let ride = h.purchase(300);
    let mut twin = History::new(1_000, 0, 0);
    twin.number = 50;
    twin.at = ride.at.plus_seconds(600).unwrap();
    let other = twin.purchase(200); // the clone's ride, counter 1 too
    let mut shadow = fed(&[&ride]);
    let answer = feed(&mut shadow, &other);
    assert_eq!(answer.disposition, Disposition::Accepted);
    let clone = Flag::Clone { sequence: Sequence::Offline, counter: 1, first: ride.tap_id(), second: other.tap_id() };
    assert_eq!(answer.raised, std::slice::from_ref(&clone));
    assert!(hotlist_reason(&clone).is_some_and(|r| r.contains("clone")));

    // One of them only in the card's log: a conflict, not proof.
    let logged = TapRecord { status: RecordStatus::Recovered, tac: None, ..other.clone() };
    let shadow = fed(&[&ride, &logged]);
    let conflict =
        Flag::CounterConflict { sequence: Sequence::Offline, counter: 1, first: ride.tap_id(), second: other.tap_id() };
    assert_eq!(flags(&shadow), std::slice::from_ref(&conflict));
    assert_eq!(hotlist_reason(&conflict), None);
}

#[test]
fn three_tac_failures_are_flagged_once_each() {
    let mut h = History::new(10_000, 0, 0);
    let forged: Vec<TapRecord> = (0..4).map(|_| h.purchase(100)).collect();
    let mismatch = TacCheck::Failed(TacError::Mismatch);
    let mut shadow = Shadow::new(card());
    for (i, record) in forged[..2].iter().enumerate() {
        let answer = feed_checked(&mut shadow, record, mismatch);
        assert_eq!(
            answer.disposition,
            Disposition::Rejected { reason: Rejection::Tac(TacError::Mismatch), again: false }
        );
        assert!(answer.raised.is_empty());
        assert_eq!(shadow.tac_failures(), i as u32 + 1);
    }
    // Re-sent, the second is not counted again.
    let again = feed_checked(&mut shadow, &forged[1], mismatch);
    assert_eq!(again.disposition, Disposition::Rejected { reason: Rejection::Tac(TacError::Mismatch), again: true });
    assert_eq!(shadow.tac_failures(), 2);
    // A key the back office lacks is not the card's failure.
    feed_checked(&mut shadow, &forged[3], TacCheck::Failed(TacError::UnknownIssuer));
    assert_eq!(shadow.tac_failures(), 2);
    // A confirmed record without a TAC is one.
    let bare = TapRecord { tac: None, ..forged[2].clone() };
    let answer = feed_checked(&mut shadow, &bare, TacCheck::Absent);
    assert_eq!(answer.disposition, Disposition::Rejected { reason: Rejection::Tac(TacError::Missing), again: false });
    assert_eq!(answer.raised, [Flag::TacFailures]);
    assert_eq!(shadow.tac_failures(), 3);
    assert!(shadow.transactions().is_empty());
    assert!(hotlist_reason(&Flag::TacFailures).is_some_and(|r| r.contains("TAC")));
}

#[test]
fn malformed_records_are_rejected_with_their_reason() {
    let mut h = History::new(1_000, 0, 0);
    let ride = h.purchase(300);
    let mut shadow = Shadow::new(card());
    let cases = [
        (TapRecord { transaction_type: 5, ..ride.clone() }, Rejection::UnknownTransactionType(5)),
        (
            TapRecord { kind: TapKind::Load, ..ride.clone() },
            Rejection::KindMismatch { kind: TapKind::Load, transaction_type: 6 },
        ),
        (
            TapRecord { balance_after_fen: 800, ..ride.clone() },
            Rejection::BalancesDoNotAddUp { before_fen: 1_000, amount_fen: 300, after_fen: 800 },
        ),
        (
            TapRecord { balance_before_fen: i64::MAX, balance_after_fen: i64::MAX - 300, ..ride.clone() },
            Rejection::BalanceOutOfRange { balance_fen: i64::MAX },
        ),
    ];
    for (record, reason) in cases {
        assert_eq!(feed(&mut shadow, &record).disposition, Disposition::Rejected { reason, again: false });
    }
    assert_eq!(shadow.tac_failures(), 0);
}

#[test]
fn the_policy_hotlists_proven_fraud_only() {
    let tap_id = yitong_record::TapId { terminal_id: GATE, number: 1 };
    let flags = [
        (Flag::CounterGap { sequence: Sequence::Offline, first: 3, last: 4 }, false),
        (Flag::CounterConflict { sequence: Sequence::Offline, counter: 3, first: tap_id, second: tap_id }, false),
        (Flag::Clone { sequence: Sequence::Online, counter: 3, first: tap_id, second: tap_id }, true),
        (
            Flag::BalanceBreak {
                sequence: Sequence::Offline,
                counter: 3,
                tap_id,
                left_fen: 1,
                between_fen: Some(0),
                found_fen: 2,
            },
            true,
        ),
        (Flag::TacFailures, true),
    ];
    for (flag, hotlisted) in flags {
        assert_eq!(hotlist_reason(&flag).is_some(), hotlisted, "{flag}");
    }
}

#[test]
fn misuse_is_an_error() {
    let mut h = History::new(1_000, 0, 0);
    let ride = h.purchase(300);
    let mut shadow = Shadow::new(CardId { issuer_id: ISSUER, card_serial: [0; 10] });
    assert!(matches!(shadow.handle_record(&ride, TacCheck::Verified, ride.at), Err(ShadowError::WrongCard { .. })));
    let mut shadow = Shadow::new(card());
    assert_eq!(
        shadow.handle_record(&ride, TacCheck::Absent, ride.at),
        Err(ShadowError::TacCheckMismatch { tap_id: ride.tap_id() })
    );
    let bare = TapRecord { tac: None, ..ride };
    assert!(shadow.handle_record(&bare, TacCheck::Verified, bare.at).is_err());
    assert!(shadow.transactions().is_empty());
}

#[test]
fn a_stored_shadow_reads_back_and_a_replay_in_any_order_gives_the_same() {
    let mut h = History::new(1_000, 0, 0);
    let records = [
        h.load(500),
        h.unconfirmed(TapKind::Exit, 300, true),
        h.purchase(100),
        h.unconfirmed(TapKind::Entry, 0, true),
        h.purchase(200),
    ];
    let mut shadow = fed(&records.iter().collect::<Vec<_>>());
    feed_checked(&mut shadow, &records[2], TacCheck::Failed(TacError::Mismatch)); // counted: 1
    let text = serde_json::to_string(&shadow).unwrap();
    assert!(
        text.contains(r#""issuer_id":"0000100000000001""#) && text.contains(r#""at":"2026-11-02 09:00:00""#),
        "{text}"
    );
    let back: Shadow = serde_json::from_str(&text).unwrap();
    assert_eq!(back.transactions(), shadow.transactions());
    assert_eq!((back.balance_fen(), back.tac_failures()), (Some(900), 1)); // 1 000 + 500 − 300 − 100 − 200

    let replayed = fed(&records.iter().rev().collect::<Vec<_>>());
    assert_eq!(replayed.transactions(), shadow.transactions());
    assert_eq!(replayed.balance_fen(), shadow.balance_fen());

    // A stored transaction is checked again on reading.
    let bad = text.replace(r#""balance_after_fen":1500"#, r#""balance_after_fen":1501"#);
    assert!(serde_json::from_str::<Shadow>(&bad).unwrap_err().to_string().contains("do not make balance after 1501"));
}

#[test]
fn the_book_keeps_one_shadow_per_card() {
    let mut h = History::new(1_000, 0, 0);
    let ride = h.purchase(300);
    let other_card = TapRecord { card_serial: [0x10, 0, 0, 0, 0, 0, 0, 0, 0, 9], ..ride.clone() };
    let mut book = ShadowBook::new();
    book.handle_record(&ride, TacCheck::Verified, ride.at).unwrap();
    book.handle_record(&other_card, TacCheck::Verified, ride.at).unwrap();
    assert_eq!(book.shadows().count(), 2);
    assert_eq!(book.shadow(&card()).and_then(Shadow::balance_fen), Some(700));
    assert!(book.handle_record(&ride, TacCheck::Absent, ride.at).is_err());
}

/// A load, an unconfirmed exit the card committed, a purchase, an unconfirmed entry; then the
/// purchase again with a TAC that fails.
fn four_and_a_tac_failure() -> Shadow {
    let mut h = History::new(1_000, 0, 0);
    let records =
        [h.load(500), h.unconfirmed(TapKind::Exit, 300, true), h.purchase(100), h.unconfirmed(TapKind::Entry, 0, true)];
    let mut shadow = fed(&records.iter().collect::<Vec<_>>());
    feed_checked(&mut shadow, &records[2], TacCheck::Failed(TacError::Mismatch));
    shadow
}

#[test]
fn a_packed_shadow_reads_back_as_the_stored_form_does() {
    let shadow = four_and_a_tac_failure();
    let packed = shadow.pack();
    // The layout in `packed.rs`: magic, card, 4 transactions, 1 rejection of 42. Each
    // transaction 21 bytes at fixed widths (head, counter, time, terminal ID and number, type)
    // and four LEB128 numbers: the amount (500 and 300 in 2 bytes, 100 and 0 in 1), the
    // balances (zigzag-doubled, 1,000 to 1,500 all in 2) and the 300 s to the time received
    // (600: 2).
    let transactions = (21 + 2 + 2 + 2 + 2) * 2 + (21 + 1 + 2 + 2 + 2) * 2;
    assert_eq!(packed.len(), 4 + 18 + 4 + transactions + 4 + 42);
    assert_eq!(&packed[..4], b"YTS2");
    assert_eq!((&packed[4..12], &packed[12..22]), (&ISSUER[..], &SERIAL[..]));
    let back = Shadow::unpack(&packed).unwrap();
    assert_eq!(serde_json::to_string(&back).unwrap(), serde_json::to_string(&shadow).unwrap());
    assert_eq!((back.balance_fen(), back.tac_failures(), flags(&back)), (Some(1_100), 1, flags(&shadow)));
    assert_eq!(back.pending(), shadow.pending());
    assert_eq!(back.pack(), packed);

    // The first transaction (the load, online before offline) from byte 26: its head (online,
    // proven = 2 at bit 1, load = 3 at bit 3), then at byte 51 its balance after, 1,500
    // zigzag-mapped to 3,000 = 23 × 128 + 56.
    assert_eq!(packed[26], 2 << 1 | 3 << 3);
    assert_eq!(&packed[51..53], &[0x80 | 56, 23]);
    let mut altered = packed.clone();
    altered[51] += 2; // 1,501
    let error = Shadow::unpack(&altered).unwrap_err().to_string();
    assert!(error.contains("do not make balance after 1501"), "{error}");
    let mut unknown = packed.clone();
    unknown[26] |= 1 << 5;
    assert!(matches!(Shadow::unpack(&unknown), Err(ShadowError::Packed { offset: 26, .. })));
    unknown[26] = 3 << 1 | 3 << 3;
    let error = Shadow::unpack(&unknown).unwrap_err().to_string();
    assert!(error.contains("unknown evidence"), "{error}");
    let truncated = Shadow::unpack(&packed[..packed.len() - 1]);
    assert!(matches!(truncated, Err(ShadowError::Packed { .. })), "{truncated:?}");
    let mut longer = packed.clone();
    longer.push(0);
    assert!(matches!(Shadow::unpack(&longer), Err(ShadowError::Packed { offset, .. }) if offset == packed.len()));
    assert!(matches!(Shadow::unpack(b"{\"card\": 1}"), Err(ShadowError::Packed { offset: 0, .. })));
    let mut huge = packed;
    huge[22..26].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(matches!(Shadow::unpack(&huge), Err(ShadowError::Packed { .. })));
}

#[test]
fn a_shadow_packed_in_the_first_version_still_reads() {
    let shadow = four_and_a_tac_failure();
    let old = shadow.pack_v1();
    // The first version's layout: 50 bytes a transaction.
    assert_eq!(old.len(), 4 + 18 + 4 + 4 * 50 + 4 + 42);
    assert_eq!(&old[..4], b"YTS1");
    let back = Shadow::unpack(&old).unwrap();
    assert_eq!(serde_json::to_string(&back).unwrap(), serde_json::to_string(&shadow).unwrap());
    assert_eq!(back.pack(), shadow.pack(), "written again in the second version");
    // Its balance after at full width, at bytes 61..69, checked again on reading.
    assert_eq!(&old[61..69], &1_500_i64.to_be_bytes());
    let mut altered = old.clone();
    altered[61..69].copy_from_slice(&1_501_i64.to_be_bytes());
    let error = Shadow::unpack(&altered).unwrap_err().to_string();
    assert!(error.contains("do not make balance after 1501"), "{error}");
    // A count of transactions beyond the bytes ends early, for either version.
    for mut huge in [old, shadow.pack()] {
        huge[22..26].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(Shadow::unpack(&huge), Err(ShadowError::Packed { .. })));
    }
}

/// A card's shadow as the binary of 3208079 stored it (`YTS1`, from its `bench clearing --taps
/// 3000`, seed 1): a bus ride of 2 yuan, a metro entry, an exit of 7 yuan. The fields below are
/// read off the bytes by hand, and the balance is the one that binary wrote in the row's
/// `balance_fen` column.
const STORED_BY_3208079: &str = "5954533100001000000000011000000000000000000B00000003\
    0107B4202611250730041000B021000100000001000000C802060200000000000008A800000000000007E020261126010000\
    0107B520261125174440100000460001000000010000000000090200000000000007E000000000000007E020261126010000\
    0107B6202611251839161000000F000400000002000002BC01090200000000000007E0000000000000052420261126010000\
    00000000";

#[test]
fn a_shadow_the_first_version_stored_reads_back() {
    let bytes = hex::decode(STORED_BY_3208079).unwrap();
    let shadow = Shadow::unpack(&bytes).unwrap();
    assert_eq!(shadow.balance_fen(), Some(1_316), "the row's balance_fen");
    let seen: Vec<_> = shadow
        .transactions()
        .iter()
        .map(|t| (t.counter, t.kind, t.amount_fen, t.balance_before_fen, t.balance_after_fen, t.evidence))
        .collect();
    assert_eq!(
        seen,
        [
            (1_972, TapKind::Single, 200, 2_216, 2_016, Evidence::Proven),
            (1_973, TapKind::Entry, 0, 2_016, 2_016, Evidence::Proven),
            (1_974, TapKind::Exit, 700, 2_016, 1_316, Evidence::Proven),
        ]
    );
    let again = Shadow::unpack(&shadow.pack()).unwrap();
    assert_eq!(again.transactions(), shadow.transactions());
    assert_eq!(&shadow.pack()[..4], b"YTS2");
}

#[test]
fn stored_transactions_read_back_in_any_order_but_not_twice() {
    let mut h = History::new(1_000, 0, 0);
    let records = [h.load(500), h.purchase(100), h.purchase(200), h.purchase(300)];
    let shadow = fed(&records.iter().collect::<Vec<_>>());
    let mut stored: serde_json::Value = serde_json::to_value(&shadow).unwrap();
    let transactions = stored["transactions"].as_array_mut().unwrap();
    assert_eq!(transactions.len(), 4);
    transactions.reverse();
    let back: Shadow = serde_json::from_value(stored.clone()).unwrap();
    assert_eq!(back.transactions(), shadow.transactions(), "put back in key order");
    assert_eq!(back.balance_fen(), Some(900)); // 1 000 + 500 − 100 − 200 − 300
    let twice = stored["transactions"][1].clone();
    stored["transactions"].as_array_mut().unwrap().push(twice);
    let error = serde_json::from_value::<Shadow>(stored).unwrap_err().to_string();
    assert!(error.contains(&format!("stored transaction {} is held twice", records[2].tap_id())), "{error}");
}

#[test]
fn a_card_loaded_from_0_and_emptied_holds_0() {
    // The load's balance before (0) is also the last purchase's balance after: a chain the
    // clocks refute (the load is stamped two hours before), so the later stamp decides.
    let mut h = History::new(0, 0, 0);
    let records = [h.load(3_000), h.purchase(200), h.purchase(2_800)];
    let shadow = fed(&records.iter().collect::<Vec<_>>());
    assert_eq!(shadow.balance_fen(), Some(0));
    // Loaded again from 0 within the clocks' tolerance of the emptying: the chain stands.
    let mut again = History::new(0, 0, 0);
    let first = again.load(3_000);
    let emptied = again.purchase(3_000);
    let mut reload = again.load(1_000);
    reload.at = emptied.at.plus_seconds(60).unwrap();
    let shadow = fed(&[&first, &emptied, &reload]);
    assert_eq!(shadow.balance_fen(), Some(1_000));
}
