//! Sign-up pricing: what a phone card of a city costs. The standard fee is the city's (29 yuan
//! in Beijing, from its city file); promotions lower it — to nothing when waived — inside a time
//! window, for some makers and some sign-up channels, up to a cap of promotional sign-ups. A
//! phone that already has a card of the city is never charged again.
//!
//! [`signup_fee`] is a pure function: rules, the request, the promotional sign-ups counted so
//! far and whether the phone already has the card go in; the [`Decision`] comes out. The caller
//! (the issuance service) counts a promotional sign-up in the same transaction that records the
//! card, so that two requests at the cap cannot both get the promotion.
//!
//! Money is integer fen; times are `yitong_profile::DateTime`, local time of Asia/Shanghai.

use std::collections::BTreeSet;
use std::fmt;

use yitong_profile::DateTime;

use crate::cities::City;
use crate::devices::lookup_key;

/// Promotions one city may run at once: a bound on the rules a request is checked against.
pub const PROMOTIONS_MAX: usize = 64;

/// Where the rider signs up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Channel {
    /// The phone maker's wallet app (embedded SE).
    MakerWallet,
    /// The city's own card app (embedded SE).
    CityApp,
    /// The carrier's service hall (NFC-SIM).
    CarrierHall,
}

const CHANNELS: [Channel; 3] = [Channel::MakerWallet, Channel::CityApp, Channel::CarrierHall];

impl Channel {
    /// `maker-wallet`, `city-app` or `carrier-hall`.
    pub fn name(self) -> &'static str {
        match self {
            Channel::MakerWallet => "maker-wallet",
            Channel::CityApp => "city-app",
            Channel::CarrierHall => "carrier-hall",
        }
    }

    /// Reads a name back, in any case.
    pub fn parse(name: &str) -> Option<Channel> {
        CHANNELS.into_iter().find(|channel| channel.name().eq_ignore_ascii_case(name.trim()))
    }
}

/// A time window, local time: from `starts` (inclusive) to `ends` (exclusive).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// First moment inside.
    pub starts: DateTime,
    /// First moment after.
    pub ends: DateTime,
}

/// A promotion of one city.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Promotion {
    /// Its name, unique in the city; sign-ups are counted per promotion.
    pub id: String,
    /// The makers whose phones it is for; empty: every maker.
    pub makers: Vec<String>,
    /// The channels it is for; empty: every channel.
    pub channels: Vec<Channel>,
    /// When it runs.
    pub window: Window,
    /// The fee inside it, fen; 0 waives the fee.
    pub fee_fen: u32,
    /// The most promotional sign-ups it grants; `None`: no cap.
    pub cap: Option<u32>,
}

/// Why a city's pricing rules cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PricingError {
    /// A promotion without a name.
    EmptyId,
    /// Two promotions of one name: their counts would mix.
    DuplicatePromotion {
        /// The name.
        id: String,
    },
    /// A window that ends before or when it starts.
    EmptyWindow {
        /// The promotion.
        id: String,
    },
    /// A promotion that would charge more than the standard fee.
    FeeAboveStandard {
        /// The promotion.
        id: String,
        /// Its fee, fen.
        fee_fen: u32,
        /// The standard fee, fen.
        standard_fee_fen: u32,
    },
    /// A cap of 0 grants nothing: leave the promotion out instead.
    ZeroCap {
        /// The promotion.
        id: String,
    },
    /// More than [`PROMOTIONS_MAX`] promotions.
    TooManyPromotions {
        /// How many were given.
        count: usize,
    },
}

impl fmt::Display for PricingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PricingError::EmptyId => f.write_str("a promotion has no id"),
            PricingError::DuplicatePromotion { id } => write!(f, "promotion `{id}` is given twice"),
            PricingError::EmptyWindow { id } => write!(f, "promotion `{id}`: its window ends before it starts"),
            PricingError::FeeAboveStandard { id, fee_fen, standard_fee_fen } => write!(
                f,
                "promotion `{id}`: its fee of {fee_fen} fen is more than the standard fee of {standard_fee_fen} fen"
            ),
            PricingError::ZeroCap { id } => write!(f, "promotion `{id}`: a cap of 0 grants nothing"),
            PricingError::TooManyPromotions { count } => {
                write!(f, "{count} promotions: at most {PROMOTIONS_MAX} per city")
            }
        }
    }
}

impl std::error::Error for PricingError {}

/// One city's sign-up pricing: its standard fee and its promotions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PricingRules {
    standard_fee_fen: u32,
    promotions: Vec<Promotion>,
    fee_refund_within_days: Option<u32>,
}

impl PricingRules {
    /// The rules of `city`: its standard fee (from its city file) and these promotions.
    pub fn for_city(city: &City, promotions: Vec<Promotion>) -> Result<Self, PricingError> {
        Self::new(city.signup_fee_fen(), promotions)
    }

    /// Rules with this standard fee and these promotions, checked.
    pub fn new(standard_fee_fen: u32, promotions: Vec<Promotion>) -> Result<Self, PricingError> {
        if promotions.len() > PROMOTIONS_MAX {
            return Err(PricingError::TooManyPromotions { count: promotions.len() });
        }
        let mut ids = BTreeSet::new();
        for p in &promotions {
            if p.id.trim().is_empty() {
                return Err(PricingError::EmptyId);
            }
            if !ids.insert(p.id.as_str()) {
                return Err(PricingError::DuplicatePromotion { id: p.id.clone() });
            }
            if p.window.ends <= p.window.starts {
                return Err(PricingError::EmptyWindow { id: p.id.clone() });
            }
            if p.fee_fen > standard_fee_fen {
                return Err(PricingError::FeeAboveStandard { id: p.id.clone(), fee_fen: p.fee_fen, standard_fee_fen });
            }
            if p.cap == Some(0) {
                return Err(PricingError::ZeroCap { id: p.id.clone() });
            }
        }
        Ok(PricingRules { standard_fee_fen, promotions, fee_refund_within_days: None })
    }

    /// The standard fee, fen.
    pub fn standard_fee_fen(&self) -> u32 {
        self.standard_fee_fen
    }

    /// The promotions, as given.
    pub fn promotions(&self) -> &[Promotion] {
        &self.promotions
    }

    /// The sign-up fee is refunded when the rider deletes the card within `days` of its issue
    /// (`None`, the default: never refunded).
    pub fn with_fee_refund_within_days(self, days: Option<u32>) -> Self {
        PricingRules { fee_refund_within_days: days, ..self }
    }

    /// Whether a card issued at `issued_at_ms` and deleted at `deleted_at_ms` gets its fee back.
    pub fn refunds_fee(&self, issued_at_ms: i64, deleted_at_ms: i64) -> bool {
        const DAY_MS: i64 = 24 * 60 * 60 * 1_000;
        self.fee_refund_within_days
            .is_some_and(|days| deleted_at_ms.saturating_sub(issued_at_ms) <= i64::from(days).saturating_mul(DAY_MS))
    }
}

/// A sign-up request, as far as its price depends on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignupRequest<'a> {
    /// The phone's maker (any spelling).
    pub maker: &'a str,
    /// Where the rider signs up.
    pub channel: Channel,
    /// When, local time.
    pub at: DateTime,
}

/// Why a promotion did not apply to a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PassedOver {
    /// It is for other makers.
    OtherMaker,
    /// It is for other channels.
    OtherChannel,
    /// It has not started.
    NotStarted,
    /// It has ended.
    Ended,
    /// Its promotional sign-ups are used up.
    CapReached {
        /// The cap.
        cap: u32,
    },
    /// Another promotion applies with a fee as low or lower.
    Superseded,
}

/// The fee of a new card.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quote {
    /// What to charge, fen.
    pub fee_fen: u32,
    /// The city's standard fee, fen.
    pub standard_fee_fen: u32,
    /// The promotion that set the fee, whose count the caller increments with the card.
    pub promotion: Option<String>,
    /// The promotions that did not apply, and why.
    pub passed_over: Vec<(String, PassedOver)>,
}

/// What a sign-up request costs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The phone already has a card of this city: return it and charge nothing.
    ExistingCard,
    /// A new card, for this fee.
    NewCard(Quote),
}

/// The fee of `request` under `rules`. `promotional_signups(id)` counts the sign-ups promotion
/// `id` has granted so far; `has_card_of_city` says whether the phone already has a card of this
/// city (then nothing is charged: a repeated request returns the existing card).
///
/// Of the promotions that apply, the lowest fee wins (the first listed on a tie).
pub fn signup_fee(
    rules: &PricingRules,
    request: &SignupRequest<'_>,
    promotional_signups: impl Fn(&str) -> u32,
    has_card_of_city: bool,
) -> Decision {
    if has_card_of_city {
        return Decision::ExistingCard;
    }
    let maker = lookup_key(request.maker);
    let mut best: Option<&Promotion> = None;
    let mut passed_over = Vec::new();
    for p in &rules.promotions {
        let why_not = if !p.makers.is_empty() && !p.makers.iter().any(|m| lookup_key(m) == maker) {
            Some(PassedOver::OtherMaker)
        } else if !p.channels.is_empty() && !p.channels.contains(&request.channel) {
            Some(PassedOver::OtherChannel)
        } else if request.at < p.window.starts {
            Some(PassedOver::NotStarted)
        } else if request.at >= p.window.ends {
            Some(PassedOver::Ended)
        } else {
            match p.cap {
                Some(cap) if promotional_signups(&p.id) >= cap => Some(PassedOver::CapReached { cap }),
                _ => None,
            }
        };
        match (why_not, best) {
            (Some(why), _) => passed_over.push((p.id.clone(), why)),
            (None, Some(b)) if b.fee_fen <= p.fee_fen => passed_over.push((p.id.clone(), PassedOver::Superseded)),
            (None, Some(b)) => {
                passed_over.push((b.id.clone(), PassedOver::Superseded));
                best = Some(p);
            }
            (None, None) => best = Some(p),
        }
    }
    let fee_fen = best.map_or(rules.standard_fee_fen, |p| p.fee_fen);
    assert!(fee_fen <= rules.standard_fee_fen, "a promotion never charges more than the standard fee");
    Decision::NewCard(Quote {
        fee_fen,
        standard_fee_fen: rules.standard_fee_fen,
        promotion: best.map(|p| p.id.clone()),
        passed_over,
    })
}

#[cfg(test)]
#[path = "pricing_tests.rs"]
mod tests;
