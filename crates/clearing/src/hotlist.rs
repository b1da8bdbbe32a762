//! Hotlists: the card serials gates refuse (and block at the next tap), per issuer, versioned so
//! that a gate fetches only what changed since the copy it holds.
//!
//! [`Hotlist`] is the back office's list: every change — a card added by policy (proven fraud)
//! or by an operator, a card removed by an operator — gets the next version number and is kept
//! with its reason, who made it and when, so the list's history is its audit trail.
//! [`Hotlist::delta`] answers a gate holding version `since`: the cards added and removed after
//! it (net: a card added then removed again is only "removed"), and the version it reaches.
//! [`GateHotlist`] is the gate's copy: it applies deltas in order and refuses one that does not
//! start at its version, so a gate never skips a change.
//!
//! The list is one sequence of versions for every issuer (a delta may be filtered to the issuers a
//! gate accepts): a gate compares one number. Nothing is ever deleted from the history.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use yitong_profile::DateTime;

use crate::shadow::CardId;

/// Longest reason kept, in bytes: a sentence for the audit, not a document.
pub const REASON_BYTES_MAX: usize = 500;

/// Who changed the list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Actor {
    /// The back office's fraud policy (a clone, a balance break, repeated TAC failures).
    Policy,
    /// An operator, by the name their key carries.
    Operator {
        /// The operator's name.
        name: String,
    },
}

/// What a change did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// The card is refused from this version on.
    Added,
    /// The card is accepted again from this version on.
    Removed,
}

/// One change of the list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// The version this change made.
    pub version: u64,
    /// The card.
    pub card: CardId,
    /// Added or removed.
    pub kind: ChangeKind,
    /// Why, for the audit.
    pub reason: String,
    /// Who.
    pub by: Actor,
    /// When, local time.
    pub at: DateTime,
}

/// Why a change was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HotlistError {
    /// Added while listed already (the change it would repeat is named by its version).
    AlreadyListed {
        /// The card.
        card: CardId,
        /// The version that listed it.
        since_version: u64,
    },
    /// Removed while not listed.
    NotListed(CardId),
    /// An empty reason, or one over [`REASON_BYTES_MAX`] bytes.
    BadReason(String),
    /// A delta asked from a version the list has not reached.
    AheadOfList {
        /// The version asked from.
        since: u64,
        /// The list's version.
        version: u64,
    },
    /// A delta that does not start at the gate's version.
    DeltaOutOfOrder {
        /// The gate's version.
        held: u64,
        /// The delta's start.
        from: u64,
    },
}

impl fmt::Display for HotlistError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HotlistError::AlreadyListed { card, since_version } => {
                write!(f, "card {card} is on the hotlist already (version {since_version})")
            }
            HotlistError::NotListed(card) => write!(f, "card {card} is not on the hotlist"),
            HotlistError::BadReason(why) => write!(f, "reason: {why}"),
            HotlistError::AheadOfList { since, version } => {
                write!(f, "version {since} is ahead of the hotlist's version {version}")
            }
            HotlistError::DeltaOutOfOrder { held, from } => {
                write!(f, "a delta from version {from} does not apply to a copy at version {held}")
            }
        }
    }
}

impl std::error::Error for HotlistError {}

/// What changed after a version: the cards to add and to remove, and the version reached.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delta {
    /// The version the delta starts from (the copy's).
    pub from: u64,
    /// The version it reaches.
    pub to: u64,
    /// Cards listed after `from` and still listed at `to`, with the change that listed them.
    pub added: Vec<Change>,
    /// Cards listed at `from` (or listed and removed after it) that are not listed at `to`.
    pub removed: Vec<CardId>,
}

/// The back office's hotlist: the current entries and every change. In JSON it is its changes
/// (`{"changes": [...]}`), checked when read back.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "StoredHotlist", into = "StoredHotlist")]
pub struct Hotlist {
    changes: Vec<Change>,
    /// Listed cards → the index of the change that listed them.
    listed: BTreeMap<CardId, usize>,
}

/// The stored form: the changes alone.
#[derive(Serialize, Deserialize)]
struct StoredHotlist {
    changes: Vec<Change>,
}

impl TryFrom<StoredHotlist> for Hotlist {
    type Error = HotlistError;

    fn try_from(stored: StoredHotlist) -> Result<Hotlist, HotlistError> {
        Hotlist::from_changes(stored.changes)
    }
}

impl From<Hotlist> for StoredHotlist {
    fn from(list: Hotlist) -> StoredHotlist {
        StoredHotlist { changes: list.changes }
    }
}

impl Hotlist {
    /// An empty list at version 0.
    pub fn new() -> Hotlist {
        Hotlist::default()
    }

    /// The list rebuilt from its changes (as stored), checked: versions 1, 2, 3, … and each
    /// change possible where it stands.
    pub fn from_changes(changes: Vec<Change>) -> Result<Hotlist, HotlistError> {
        let mut list = Hotlist::new();
        for change in changes {
            let expected = list.version() + 1;
            if change.version != expected {
                return Err(HotlistError::DeltaOutOfOrder { held: list.version(), from: change.version });
            }
            list.apply(change.card, change.kind, change.reason, change.by, change.at)?;
        }
        Ok(list)
    }

    /// The version: the number of changes made.
    pub fn version(&self) -> u64 {
        self.changes.len() as u64
    }

    /// Every change, oldest first.
    pub fn changes(&self) -> &[Change] {
        &self.changes
    }

    /// The change that listed `card`, if it is listed.
    pub fn entry(&self, card: &CardId) -> Option<&Change> {
        self.listed.get(card).and_then(|&i| self.changes.get(i))
    }

    /// The listed cards, with the changes that listed them.
    pub fn entries(&self) -> impl Iterator<Item = &Change> {
        self.listed.values().filter_map(|&i| self.changes.get(i))
    }

    /// Lists `card` for `reason`: the change made.
    pub fn add(&mut self, card: CardId, reason: &str, by: Actor, at: DateTime) -> Result<&Change, HotlistError> {
        self.apply(card, ChangeKind::Added, reason.to_owned(), by, at)
    }

    /// Takes `card` off the list for `reason`: the change made.
    pub fn remove(&mut self, card: CardId, reason: &str, by: Actor, at: DateTime) -> Result<&Change, HotlistError> {
        self.apply(card, ChangeKind::Removed, reason.to_owned(), by, at)
    }

    fn apply(
        &mut self,
        card: CardId,
        kind: ChangeKind,
        reason: String,
        by: Actor,
        at: DateTime,
    ) -> Result<&Change, HotlistError> {
        let reason = check_reason(reason)?;
        match (kind, self.entry(&card)) {
            (ChangeKind::Added, Some(listed)) => {
                return Err(HotlistError::AlreadyListed { card, since_version: listed.version })
            }
            (ChangeKind::Removed, None) => return Err(HotlistError::NotListed(card)),
            _ => {}
        }
        let index = self.changes.len();
        self.changes.push(Change { version: self.version() + 1, card, kind, reason, by, at });
        match kind {
            ChangeKind::Added => self.listed.insert(card, index),
            ChangeKind::Removed => self.listed.remove(&card),
        };
        Ok(&self.changes[index])
    }

    /// What changed after version `since` (0: the whole list) for the issuers `accepted` keeps
    /// (every issuer when it keeps all).
    pub fn delta(&self, since: u64, accepted: impl Fn(&[u8; 8]) -> bool) -> Result<Delta, HotlistError> {
        let version = self.version();
        if since > version {
            return Err(HotlistError::AheadOfList { since, version });
        }
        let start = usize::try_from(since).unwrap_or(usize::MAX).min(self.changes.len());
        Delta::after(since, version, &self.changes[start..], accepted)
    }
}

impl Delta {
    /// The delta from `since` to `version` from the changes after `since` alone (versions
    /// `since + 1` to `version`, in order) — what a store answers without replaying the list: a
    /// card touched after `since` is added, with the change, when its last change listed it, and
    /// removed otherwise (a copy that did not hold it has nothing to remove).
    pub fn after(
        since: u64,
        version: u64,
        changes: &[Change],
        accepted: impl Fn(&[u8; 8]) -> bool,
    ) -> Result<Delta, HotlistError> {
        if since > version {
            return Err(HotlistError::AheadOfList { since, version });
        }
        let mut last: BTreeMap<CardId, &Change> = BTreeMap::new();
        // The version the changes reached so far.
        let mut reached = since;
        for change in changes {
            if Some(change.version) != reached.checked_add(1) {
                return Err(HotlistError::DeltaOutOfOrder { held: reached, from: change.version });
            }
            reached = change.version;
            if accepted(&change.card.issuer_id) {
                last.insert(change.card, change);
            }
        }
        if reached != version {
            return Err(HotlistError::DeltaOutOfOrder { held: reached, from: version });
        }
        let mut added = Vec::new();
        let mut removed = Vec::new();
        for (card, change) in last {
            match change.kind {
                ChangeKind::Added => added.push(change.clone()),
                ChangeKind::Removed => removed.push(card),
            }
        }
        Ok(Delta { from: since, to: version, added, removed })
    }
}

/// A gate's copy of the hotlist: the serials it refuses and the version they are at.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateHotlist {
    /// The version held (0: none yet).
    pub version: u64,
    /// The refused cards.
    pub cards: BTreeSet<CardId>,
}

impl GateHotlist {
    /// Applies `delta`, which must start at the version held; the version after.
    pub fn apply(&mut self, delta: &Delta) -> Result<u64, HotlistError> {
        if delta.from != self.version {
            return Err(HotlistError::DeltaOutOfOrder { held: self.version, from: delta.from });
        }
        for card in &delta.removed {
            self.cards.remove(card);
        }
        self.cards.extend(delta.added.iter().map(|change| change.card));
        self.version = delta.to;
        Ok(self.version)
    }

    /// The serials, as the gate's terminal core takes them.
    pub fn serials(&self) -> BTreeSet<[u8; 10]> {
        self.cards.iter().map(|card| card.card_serial).collect()
    }
}

fn check_reason(reason: String) -> Result<String, HotlistError> {
    let trimmed = reason.trim();
    if trimmed.is_empty() {
        return Err(HotlistError::BadReason("a change needs a reason".into()));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(HotlistError::BadReason("control characters are not allowed".into()));
    }
    if trimmed.len() > REASON_BYTES_MAX {
        return Err(HotlistError::BadReason(format!("{} bytes, at most {REASON_BYTES_MAX}", trimmed.len())));
    }
    Ok(trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEIJING: [u8; 8] = [0, 0, 0x10, 0, 0, 0, 0, 1];
    const SHANGHAI: [u8; 8] = [0, 0, 0x20, 0, 0, 0, 0, 1];

    fn card(issuer_id: [u8; 8], last: u8) -> CardId {
        CardId { issuer_id, card_serial: [0x10, 0, 0, 0, 0, 0, 0, 0, 0, last] }
    }

    fn at(minute: u8) -> DateTime {
        DateTime::new(2026, 12, 6, 9, minute, 0).expect("valid")
    }

    fn desk() -> Actor {
        Actor::Operator { name: "desk1".into() }
    }

    #[test]
    fn changes_are_versioned_and_kept_with_reason_actor_and_time() {
        let mut list = Hotlist::new();
        let change = list.add(card(BEIJING, 1), " clone: counter 7 twice ", Actor::Policy, at(1)).expect("added");
        assert_eq!((change.version, change.reason.as_str()), (1, "clone: counter 7 twice"));
        list.add(card(BEIJING, 2), "reported stolen", desk(), at(2)).expect("added");
        let removed = list.remove(card(BEIJING, 1), "clone was a gate fault", desk(), at(3)).expect("removed");
        assert_eq!((removed.version, removed.kind), (3, ChangeKind::Removed));
        assert_eq!(list.version(), 3);
        assert_eq!(list.entries().map(|c| c.card).collect::<Vec<_>>(), [card(BEIJING, 2)]);
        assert_eq!(list.changes().len(), 3, "the history keeps every change");
    }

    #[test]
    fn bad_changes_are_refused_and_change_nothing() {
        let mut list = Hotlist::new();
        list.add(card(BEIJING, 1), "stolen", desk(), at(1)).expect("added");
        assert_eq!(
            list.add(card(BEIJING, 1), "again", desk(), at(2)).map(|c| c.version),
            Err(HotlistError::AlreadyListed { card: card(BEIJING, 1), since_version: 1 })
        );
        assert_eq!(
            list.remove(card(BEIJING, 9), "never listed", desk(), at(2)).map(|c| c.version),
            Err(HotlistError::NotListed(card(BEIJING, 9)))
        );
        assert!(matches!(list.add(card(BEIJING, 2), "  ", desk(), at(2)), Err(HotlistError::BadReason(_))));
        let long = "x".repeat(REASON_BYTES_MAX + 1);
        assert!(matches!(list.add(card(BEIJING, 2), &long, desk(), at(2)), Err(HotlistError::BadReason(_))));
        assert!(matches!(list.add(card(BEIJING, 2), "lost\u{0}", desk(), at(2)), Err(HotlistError::BadReason(_))));
        assert_eq!(list.version(), 1);
    }

    #[test]
    fn a_gate_follows_the_list_by_deltas() {
        let mut list = Hotlist::new();
        let mut gate = GateHotlist::default();
        list.add(card(BEIJING, 1), "clone", Actor::Policy, at(1)).expect("added");
        list.add(card(SHANGHAI, 2), "stolen", desk(), at(2)).expect("added");
        let first = list.delta(0, |_| true).expect("a delta");
        assert_eq!((first.from, first.to, first.added.len(), first.removed.len()), (0, 2, 2, 0));
        assert_eq!(gate.apply(&first), Ok(2));

        // Removed, added, removed and added again: the copy at 2 learns only the net changes.
        list.remove(card(BEIJING, 1), "gate fault", desk(), at(3)).expect("removed");
        list.add(card(BEIJING, 3), "tampered balance", Actor::Policy, at(4)).expect("added");
        list.remove(card(SHANGHAI, 2), "found", desk(), at(5)).expect("removed");
        list.add(card(SHANGHAI, 2), "stolen again", desk(), at(6)).expect("added");
        let delta = list.delta(2, |_| true).expect("a delta");
        let added: Vec<(CardId, u64)> = delta.added.iter().map(|c| (c.card, c.version)).collect();
        assert_eq!(added, [(card(BEIJING, 3), 4), (card(SHANGHAI, 2), 6)]);
        assert_eq!(delta.removed, [card(BEIJING, 1)]);
        assert_eq!(gate.apply(&delta), Ok(6));
        let expected: BTreeSet<CardId> = list.entries().map(|c| c.card).collect();
        assert_eq!(gate.cards, expected);
        assert_eq!(gate.serials().len(), 2);

        // A delta of another start is refused; one from the future too.
        assert_eq!(gate.apply(&first), Err(HotlistError::DeltaOutOfOrder { held: 6, from: 0 }));
        assert_eq!(list.delta(7, |_| true), Err(HotlistError::AheadOfList { since: 7, version: 6 }));
        // Up to date: an empty delta at the same version.
        let none = list.delta(6, |_| true).expect("a delta");
        assert!(none.added.is_empty() && none.removed.is_empty() && none.to == 6);
    }

    #[test]
    fn a_delta_is_made_from_the_changes_after_the_version_alone() {
        let mut list = Hotlist::new();
        list.add(card(BEIJING, 1), "clone", Actor::Policy, at(1)).expect("added");
        list.add(card(SHANGHAI, 2), "stolen", desk(), at(2)).expect("added");
        list.remove(card(BEIJING, 1), "gate fault", desk(), at(3)).expect("removed");
        list.add(card(BEIJING, 3), "tampered balance", Actor::Policy, at(4)).expect("added");
        list.remove(card(SHANGHAI, 2), "found", desk(), at(5)).expect("removed");
        let changes = list.changes().to_vec();
        let listed: BTreeSet<CardId> = list.entries().map(|c| c.card).collect();
        // A gate at any version catches up from the changes after it.
        for since in 0..=5u64 {
            let mut gate = GateHotlist::default();
            let before = Hotlist::from_changes(changes[..since as usize].to_vec()).expect("a prefix");
            gate.apply(&before.delta(0, |_| true).expect("a delta")).expect("applies");
            let delta = Delta::after(since, 5, &changes[since as usize..], |_| true).expect("a delta");
            assert_eq!(gate.apply(&delta), Ok(5));
            assert_eq!(gate.cards, listed, "from version {since}");
        }
        // A change missing, or the changes stopping short of the version: refused.
        let gap = [changes[2].clone(), changes[4].clone()];
        assert_eq!(Delta::after(2, 5, &gap, |_| true), Err(HotlistError::DeltaOutOfOrder { held: 3, from: 5 }));
        assert_eq!(
            Delta::after(2, 5, &changes[2..4], |_| true),
            Err(HotlistError::DeltaOutOfOrder { held: 4, from: 5 })
        );
        assert_eq!(Delta::after(6, 5, &[], |_| true), Err(HotlistError::AheadOfList { since: 6, version: 5 }));
    }

    #[test]
    fn a_delta_keeps_the_issuers_a_gate_accepts() {
        let mut list = Hotlist::new();
        list.add(card(BEIJING, 1), "clone", Actor::Policy, at(1)).expect("added");
        list.add(card(SHANGHAI, 2), "stolen", desk(), at(2)).expect("added");
        let delta = list.delta(0, |issuer| *issuer == SHANGHAI).expect("a delta");
        assert_eq!(delta.added.iter().map(|c| c.card).collect::<Vec<_>>(), [card(SHANGHAI, 2)]);
        assert_eq!(delta.to, 2, "the version is the list's: one number for every issuer");
    }

    #[test]
    fn the_list_survives_serde_and_rebuilds_its_entries() {
        let mut list = Hotlist::new();
        list.add(card(BEIJING, 1), "clone", Actor::Policy, at(1)).expect("added");
        list.add(card(BEIJING, 2), "stolen", desk(), at(2)).expect("added");
        list.remove(card(BEIJING, 1), "gate fault", desk(), at(3)).expect("removed");
        let json = serde_json::to_string(&list).expect("serializes");
        assert!(json.contains("\"issuer_id\":\"0000100000000001\""), "{json}");
        let back: Hotlist = serde_json::from_str(&json).expect("parses");
        assert_eq!(back, list);
        assert_eq!(back.entries().map(|c| c.card).collect::<Vec<_>>(), [card(BEIJING, 2)]);
        // A history with a hole, or a removal of a card never listed, is refused.
        let mut changes = list.changes().to_vec();
        changes.remove(1);
        assert!(matches!(Hotlist::from_changes(changes), Err(HotlistError::DeltaOutOfOrder { held: 1, from: 3 })));
        let mut changes = list.changes().to_vec();
        changes.remove(0);
        for (version, change) in (1..).zip(changes.iter_mut()) {
            change.version = version;
        }
        assert_eq!(Hotlist::from_changes(changes).map(|l| l.version()), Err(HotlistError::NotListed(card(BEIJING, 1))));
    }
}
