//! The hotlist in the store, on SQLite and PostgreSQL: changes kept with their versions and read
//! back as the list, and a gate's delta from the changes after its version alone; writers racing from separate pools each get their own version, none lost;
//! a refused change writes nothing.

#[macro_use]
mod support;

use support::TestDb;
use yitong_clearing::hotlist::{Actor, ChangeKind};
use yitong_clearing::shadow::CardId;
use yitong_platform::store::HotlistChangeError;
use yitong_profile::DateTime;

fn card(last: u8) -> CardId {
    CardId { issuer_id: [0, 0, 0x10, 0, 0, 0, 0, 1], card_serial: [0x10, 0, 0, 0, 0, 0, 0, 0, 0, last] }
}

fn at() -> DateTime {
    DateTime::new(2026, 12, 6, 9, 0, 0).expect("valid")
}

async fn changes_are_kept_and_read_back(db: &TestDb) {
    let store = &db.store;
    let desk = Actor::Operator { name: "desk1".into() };
    store.change_hotlist(card(1), ChangeKind::Added, "stolen", desk.clone(), at(), 1).await.expect("added");
    store.change_hotlist(card(2), ChangeKind::Added, "clone", Actor::Policy, at(), 2).await.expect("added");
    let removed =
        store.change_hotlist(card(1), ChangeKind::Removed, "found", desk.clone(), at(), 3).await.expect("removed");
    assert_eq!(removed.version, 3);
    let refused = store.change_hotlist(card(1), ChangeKind::Removed, "again", desk, at(), 4).await;
    assert!(matches!(refused, Err(HotlistChangeError::Refused(_))), "{refused:?}");

    let list = db.open_again().await.hotlist().await.expect("read");
    assert_eq!(list.version(), 3, "the refused change wrote nothing");
    assert_eq!(list.entries().map(|c| (c.card, c.by.clone())).collect::<Vec<_>>(), [(card(2), Actor::Policy)]);
    assert_eq!(list.changes()[2].reason, "found");

    // A gate's poll reads the changes after its version only: card 1 listed at 1 and removed at
    // 3, card 2 listed at 2.
    let delta = |since| async move { db.store.hotlist_delta(since, |_| true).await.expect("read") };
    let from_1 = delta(1).await.expect("a delta");
    assert_eq!((from_1.from, from_1.to), (1, 3));
    assert_eq!(from_1.added.iter().map(|c| (c.card, c.version)).collect::<Vec<_>>(), [(card(2), 2)]);
    assert_eq!(from_1.removed, [card(1)]);
    let from_0 = delta(0).await.expect("a delta");
    assert_eq!((from_0.added.len(), from_0.removed.len()), (1, 1));
    let none = delta(3).await.expect("a delta");
    assert!(none.added.is_empty() && none.removed.is_empty() && none.to == 3);
    assert!(delta(4).await.is_err(), "ahead of the list");
    // Only Beijing's cards for a gate that keeps Beijing's: none of another issuer here.
    let other = db.store.hotlist_delta(0, |issuer| issuer[2] == 0x20).await.expect("read").expect("a delta");
    assert!(other.added.is_empty() && other.removed.is_empty() && other.to == 3);
}

async fn racing_writers_each_get_a_version(db: &TestDb) {
    let other = db.open_again().await;
    let (a, b) = tokio::join!(
        db.store.change_hotlist(card(1), ChangeKind::Added, "stolen", Actor::Policy, at(), 1),
        other.change_hotlist(card(2), ChangeKind::Added, "stolen", Actor::Policy, at(), 1),
    );
    let mut versions = [a.expect("a listed").version, b.expect("b listed").version];
    versions.sort_unstable();
    assert_eq!(versions, [1, 2]);
    // The same card from both: one lists it, the other is refused as listed already.
    let (c, d) = tokio::join!(
        db.store.change_hotlist(card(3), ChangeKind::Added, "clone", Actor::Policy, at(), 2),
        other.change_hotlist(card(3), ChangeKind::Added, "clone", Actor::Policy, at(), 2),
    );
    assert_eq!([c.is_ok(), d.is_ok()].iter().filter(|ok| **ok).count(), 1);
    assert_eq!(db.store.hotlist().await.expect("read").version(), 3);
}

on_both_backends! {
    kept => changes_are_kept_and_read_back,
    racing => racing_writers_each_get_a_version,
}
