//! The shadows of an ingest group's cards, as the group reads them: from the store's cache where
//! it holds them, else from their rows, else new.
//!
//! Kept in one vector sorted by card, each shadow boxed: a group of tens of thousands of cards is
//! built in order, split between the two feeding threads by reference, and written and cached in
//! the cards' order without moving its shadows (a map of them, split and joined again for the
//! threads, cost a tenth of a million taps' ingest).

use yitong_clearing::shadow::{CardId, Shadow};

use super::clearing::{placeholders, stored_shadow, upper_hex, IngestError, Read, SHADOWS_PER_STATEMENT};
use super::shadow_cache::ShadowCache;
use super::sql::{query, Db};
use super::{column, Backend};

/// One card's shadow and where it was found.
#[derive(Debug)]
pub(super) struct GroupShadow {
    pub(super) card: CardId,
    pub(super) read: Read,
    pub(super) shadow: Box<Shadow>,
}

/// Shadows of distinct cards, in the cards' order.
#[derive(Debug)]
pub(super) struct GroupShadows(Vec<GroupShadow>);

impl GroupShadows {
    /// A new shadow ([`Read::New`]) for each of `cards` (in any order, repeats allowed).
    #[cfg(test)]
    pub(super) fn new_for(cards: impl IntoIterator<Item = CardId>) -> GroupShadows {
        let mut cards: Vec<CardId> = cards.into_iter().collect();
        cards.sort_unstable();
        cards.dedup();
        GroupShadows(cards.into_iter().map(|card| GroupShadow::new(card, Read::New)).collect())
    }

    /// Cards held.
    pub(super) fn len(&self) -> usize {
        self.0.len()
    }

    /// The shadow of `card`, if held.
    pub(super) fn get(&self, card: &CardId) -> Option<&GroupShadow> {
        self.0.get(position(&self.0, card)?)
    }

    /// The shadow of `card`, if held, to change.
    fn get_mut(&mut self, card: &CardId) -> Option<&mut GroupShadow> {
        let at = position(&self.0, card)?;
        self.0.get_mut(at)
    }

    /// In the cards' order.
    pub(super) fn iter(&self) -> std::slice::Iter<'_, GroupShadow> {
        self.0.iter()
    }
}

impl IntoIterator for GroupShadows {
    type Item = GroupShadow;
    type IntoIter = std::vec::IntoIter<GroupShadow>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl GroupShadow {
    fn new(card: CardId, read: Read) -> GroupShadow {
        GroupShadow { card, read, shadow: Box::new(Shadow::new(card)) }
    }
}

/// Where `card` is among `held` (in the cards' order).
fn position(held: &[impl std::borrow::Borrow<GroupShadow>], card: &CardId) -> Option<usize> {
    held.binary_search_by(|held| held.borrow().card.cmp(card)).ok()
}

/// Some of a group's shadows (half of its cards, or all), by reference, in the cards' order.
pub(super) struct Part<'a>(Vec<&'a mut GroupShadow>);

impl<'a> Part<'a> {
    /// All of `shadows`.
    pub(super) fn whole(shadows: &'a mut GroupShadows) -> Part<'a> {
        Part(shadows.0.iter_mut().collect())
    }

    /// The shadows of `shadows` whose card's `half` is 0, and the others.
    pub(super) fn halves(shadows: &'a mut GroupShadows, half: impl Fn(&CardId) -> usize) -> (Part<'a>, Part<'a>) {
        let (first, second) = shadows.0.iter_mut().partition(|held| half(&held.card) == 0);
        (Part(first), Part(second))
    }

    /// The shadow of `card`, if in this part.
    pub(super) fn get_mut(&mut self, card: &CardId) -> Option<&mut Shadow> {
        let at = position(&self.0, card)?;
        self.0.get_mut(at).map(|held| &mut *held.shadow)
    }

    /// The shadows, in the cards' order.
    pub(super) fn shadows(&self) -> impl Iterator<Item = &Shadow> {
        self.0.iter().map(|held| &*held.shadow)
    }
}

/// The shadows of `cards` (in any order, repeats allowed) with where they were found; a fresh
/// shadow ([`Read::New`]) for a card not seen yet. A writer passes the `cache`: its cards are
/// taken from there instead (a reader passes none, leaving the cache alone).
pub(super) async fn load_shadows(
    backend: Backend,
    cache: Option<&ShadowCache>,
    connection: &mut Db<'_>,
    cards: &[CardId],
) -> Result<GroupShadows, IngestError> {
    // The card IDs sorted and made distinct first: the shadows are then put in order.
    let mut wanted = cards.to_vec();
    wanted.sort_unstable();
    wanted.dedup();
    let taken = match cache {
        Some(cache) => cache.take_all(&wanted),
        None => std::iter::repeat_with(|| None).take(wanted.len()).collect(),
    };
    let mut distinct = Vec::new();
    let mut shadows = Vec::with_capacity(wanted.len());
    for (card, cached) in wanted.into_iter().zip(taken) {
        shadows.push(match cached {
            Some((version, shadow)) => GroupShadow { card, read: Read::Cached(version), shadow },
            None => {
                distinct.push(card);
                GroupShadow::new(card, Read::New)
            }
        });
    }
    let mut shadows = GroupShadows(shadows);
    for chunk in distinct.chunks(SHADOWS_PER_STATEMENT) {
        let sql = format!(
            "SELECT s.issuer_id, s.card_serial, s.state, s.packed, s.version FROM (VALUES {}) AS wanted \
             JOIN card_shadows AS s ON s.issuer_id = wanted.column1 AND s.card_serial = wanted.column2",
            placeholders(backend, chunk.len(), 2)
        );
        let mut query = query(&sql);
        for card in chunk {
            query = query.bind(hex::encode_upper(card.issuer_id)).bind(hex::encode_upper(card.card_serial));
        }
        for row in query.fetch_all(&mut *connection).await? {
            let (issuer, serial): (String, String) = (column(&row, 0)?, column(&row, 1)?);
            let version: i64 = column(&row, 4)?;
            // The key named only on an error: a group reads tens of thousands of rows.
            let shadow = stored_shadow(&row, 2, &format_args!("{issuer}/{serial}"))?;
            let card = shadow.card();
            let (mut issuer_hex, mut serial_hex) = ([0; 16], [0; 20]);
            if upper_hex(&card.issuer_id, &mut issuer_hex)? != issuer
                || upper_hex(&card.card_serial, &mut serial_hex)? != serial
            {
                return Err(IngestError::Shadow(format!("card {issuer}/{serial}: the stored shadow is card {card}'s")));
            }
            let held = shadows
                .get_mut(&card)
                .ok_or_else(|| IngestError::Shadow(format!("card {issuer}/{serial}: a row not asked for")))?;
            held.read = Read::Stored(version);
            *held.shadow = shadow;
        }
    }
    Ok(shadows)
}
