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
    /// A new shadow ([`Read::New`]) for each of `seating`'s cards.
    #[cfg(test)]
    pub(super) fn new_for(seating: &Seating) -> GroupShadows {
        GroupShadows(seating.cards.iter().map(|&card| GroupShadow::new(card, Read::New)).collect())
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
fn position(held: &[GroupShadow], card: &CardId) -> Option<usize> {
    held.binary_search_by(|held| held.card.cmp(card)).ok()
}

/// A group's records seated at their cards' shadows: the distinct cards in order, and each
/// record's place among them. Made once, by one sort, so that feeding a record looks nothing up
/// (a binary search a record, through the shadows' pointers, was a twentieth of the peak day's
/// ingest).
#[derive(Debug)]
pub(super) struct Seating {
    /// Distinct, in the cards' order.
    pub(super) cards: Vec<CardId>,
    /// For each card given, in the order given, its index in `cards`.
    pub(super) seats: Vec<u32>,
}

impl Seating {
    /// The seating of `cards` (a record's card each, in any order, repeats allowed).
    pub(super) fn of(cards: &[CardId]) -> Result<Seating, IngestError> {
        let count = u32::try_from(cards.len())
            .map_err(|_| IngestError::Internal(format!("{} records in one group", cards.len())))?;
        let mut order: Vec<(CardId, u32)> = cards.iter().copied().zip(0..count).collect();
        order.sort_unstable();
        let mut distinct: Vec<CardId> = Vec::new();
        let mut seats = vec![0; cards.len()];
        for (card, record) in order {
            if distinct.last() != Some(&card) {
                distinct.push(card);
            }
            // Both below `count`: `distinct` grows by at most one a record.
            seats[record as usize] = (distinct.len() - 1) as u32;
        }
        Ok(Seating { cards: distinct, seats })
    }
}

/// Where a shadow went when a group's shadows were split in halves: its half, and its place in
/// that half's part.
#[derive(Clone, Copy, Debug)]
pub(super) struct Place {
    pub(super) half: u8,
    pub(super) at: u32,
}

/// Some of a group's shadows (half of its cards, or all), by reference, in the cards' order.
pub(super) struct Part<'a>(Vec<&'a mut GroupShadow>);

impl<'a> Part<'a> {
    /// All of `shadows` (a shadow's place in it is its index in `shadows`).
    pub(super) fn whole(shadows: &'a mut GroupShadows) -> Part<'a> {
        Part(shadows.0.iter_mut().collect())
    }

    /// The shadows of `shadows` whose card's `half` is 0, and the others; and where each of
    /// `shadows` went, in their order.
    pub(super) fn halves(
        shadows: &'a mut GroupShadows,
        half: impl Fn(&CardId) -> usize,
    ) -> (Part<'a>, Part<'a>, Vec<Place>) {
        let (mut first, mut second) = (Vec::new(), Vec::new());
        let mut places = Vec::with_capacity(shadows.len());
        for held in shadows.0.iter_mut() {
            let (which, part) = match half(&held.card) {
                0 => (0, &mut first),
                _ => (1, &mut second),
            };
            // Below the group's size, which `Seating::of` found to fit.
            places.push(Place { half: which, at: part.len() as u32 });
            part.push(held);
        }
        (Part(first), Part(second), places)
    }

    /// The shadow at `at` in this part, if it is `card`'s.
    pub(super) fn at(&mut self, at: usize, card: &CardId) -> Option<&mut Shadow> {
        self.0.get_mut(at).filter(|held| held.card == *card).map(|held| &mut *held.shadow)
    }

    /// The shadows, in the cards' order.
    pub(super) fn shadows(&self) -> impl Iterator<Item = &Shadow> {
        self.0.iter().map(|held| &*held.shadow)
    }
}

/// The shadows of `seating`'s cards with where they were found, in its order; a fresh shadow
/// ([`Read::New`]) for a card not seen yet. A writer passes the `cache`: its cards are taken from
/// there instead (a reader passes none, leaving the cache alone).
pub(super) async fn load_shadows(
    backend: Backend,
    cache: Option<&ShadowCache>,
    connection: &mut Db<'_>,
    seating: &Seating,
) -> Result<GroupShadows, IngestError> {
    let wanted = &seating.cards;
    let taken = match cache {
        Some(cache) => cache.take_all(wanted),
        None => std::iter::repeat_with(|| None).take(wanted.len()).collect(),
    };
    let mut distinct = Vec::new();
    let mut shadows = Vec::with_capacity(wanted.len());
    for (&card, cached) in wanted.iter().zip(taken) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn card(issuer: u8, serial: u8) -> CardId {
        CardId { issuer_id: [issuer; 8], card_serial: [0, 0, 0, 0, 0, 0, 0, 0, 0, serial] }
    }

    #[test]
    fn each_record_is_seated_at_its_card_among_the_distinct_cards_in_order() {
        let records = [card(2, 1), card(1, 9), card(2, 1), card(1, 3), card(1, 9), card(2, 1)];
        let seating = Seating::of(&records).expect("seated");
        assert_eq!(seating.cards, vec![card(1, 3), card(1, 9), card(2, 1)]);
        assert_eq!(seating.seats, vec![2, 1, 2, 0, 1, 2]);
        let none = Seating::of(&[]).expect("seated");
        assert!(none.cards.is_empty() && none.seats.is_empty());
    }

    #[test]
    fn halves_say_where_each_shadow_went_and_a_place_answers_only_for_its_card() {
        let seating = Seating::of(&[card(1, 1), card(1, 2), card(1, 3), card(1, 4)]).expect("seated");
        let mut shadows = GroupShadows::new_for(&seating);
        let (mut first, mut second, places) = Part::halves(&mut shadows, |card| usize::from(card.card_serial[9] % 2));
        let halves: Vec<(u8, u32)> = places.iter().map(|place| (place.half, place.at)).collect();
        // Serials 2 and 4 to the first half, 1 and 3 to the second, each in order.
        assert_eq!(halves, vec![(1, 0), (0, 0), (1, 1), (0, 1)]);
        assert!(first.at(1, &card(1, 4)).is_some());
        assert!(first.at(1, &card(1, 2)).is_none(), "another card's place");
        assert!(second.at(2, &card(1, 3)).is_none(), "past the part");
        assert!(second.at(0, &card(1, 1)).is_some());
    }
}
