//! Card issuance, the trusted-service-manager role: a phone asks for a card of a city; the
//! service checks the phone's eligibility, prices the sign-up fee, takes the fee through a fee
//! order (unless a promotion waives it), allocates the card's serial, personalizes the card with
//! the issuer's master keys and returns the image for the phone's secure element.
//!
//! Call order: [`IssuanceService::request_card`]; when it answers
//! [`Issuance::PaymentRequired`], the rider pays the fee order in the provider's app, the
//! payment service learns it (notification or poll), and the phone repeats the same request
//! (same fee order ID), which now issues the card. Every call is idempotent: one card per city
//! per phone (the store's unique (device, city) and one transaction for the serial, the card and
//! the promotional count), a repeated request returns the existing card and never charges twice.
//!
//! Money: the fee order's transitions post to the ledger (paid, then issued: the fee is earned).
//! A fee order paid for a promotion that ran out before the card was issued is refunded.

use std::collections::BTreeMap;
use std::fmt;

use yitong_issuer::{CardRequest, IssueError, IssuerIdentity, Serial};
use yitong_profile::DateTime;

use crate::cities::{Cities, City};
use crate::devices::{DeviceRegistry, Eligibility};
use crate::issuer_keys::IssuerKeyring;
use crate::ledger::{CardId, Fen};
use crate::payments::{
    MerchantOrderId, NewOrder, Order, OrderKind, OrderState, PaymentProvider, PaymentService, ServiceError,
};
use crate::pricing::{signup_fee, Channel, Decision, PricingError, PricingRules, Quote, SignupRequest};
use crate::store::{self, StoreError};

/// Longest device ID, SE ID, carrier, maker or model name accepted.
pub const PHONE_FIELD_LENGTH_MAX: usize = 64;

/// The phone asking for a card.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Phone {
    /// The phone's device ID (the platform's key for the phone).
    pub device_id: String,
    /// The secure element's ID (the embedded SE's CPLC, or the NFC-SIM's ICCID).
    pub se_id: String,
    /// Maker, any spelling the device registry knows.
    pub maker: String,
    /// Model, any spelling the device registry knows.
    pub model: String,
    /// The carrier of an NFC-SIM; `None` for an embedded SE.
    pub carrier: Option<String>,
}

/// One request for a card.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardApplication {
    /// Who asks.
    pub phone: Phone,
    /// For which city (its name, `beijing`).
    pub city: String,
    /// Where the rider signs up: `MakerWallet` or `CityApp` for an embedded SE, `CarrierHall`
    /// for an NFC-SIM.
    pub channel: Channel,
    /// The fee order's ID, made by the phone so that a repeated request names the same order.
    pub fee_order_id: MerchantOrderId,
}

/// A card the platform issued to a phone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhoneCard {
    /// The card's ID: its application serial, 20 digits.
    pub card_id: CardId,
    /// The city's name.
    pub city: String,
    /// The phone it was issued to.
    pub device_id: String,
    /// The secure element it was issued to.
    pub se_id: String,
    /// The phone's maker, as asked.
    pub maker: String,
    /// The phone's model, as asked.
    pub model: String,
    /// The NFC-SIM's carrier.
    pub carrier: Option<String>,
    /// The issuer's key version the card carries.
    pub key_version: u8,
    /// First valid day, BCD `YYYYMMDD`.
    pub valid_from: [u8; 4],
    /// Last valid day, BCD `YYYYMMDD`.
    pub valid_to: [u8; 4],
    /// The sign-up fee charged.
    pub fee: Fen,
    /// The promotion that set the fee.
    pub promotion_id: Option<String>,
    /// The fee order (none when the fee was waived).
    pub fee_order_id: Option<MerchantOrderId>,
    /// When, Unix milliseconds.
    pub issued_at_ms: i64,
}

impl PhoneCard {
    /// The application serial.
    pub fn serial(&self) -> Result<Serial, IssuanceError> {
        let mut serial = [0u8; 10];
        hex::decode_to_slice(self.card_id.as_str(), &mut serial)
            .map_err(|_| IssuanceError::Store(corrupt(&self.card_id, "card ID is not a serial")))?;
        Ok(Serial(serial))
    }
}

/// What a sign-up fee order was quoted for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SignupOrder {
    pub merchant_order_id: MerchantOrderId,
    pub device_id: String,
    pub city: String,
    pub fee: Fen,
    pub promotion_id: Option<String>,
}

/// A card ready for the phone's secure element.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedCard {
    /// The card as recorded.
    pub card: PhoneCard,
    /// The personalized card image (for a software SE; it holds the card's diversified keys:
    /// hand it to the phone only, never log it).
    pub image: Vec<u8>,
    /// `true` when the phone had the card already (a repeated request): nothing was charged now.
    pub existing: bool,
}

impl fmt::Debug for IssuedCard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The image carries card keys: keep it out of logs.
        f.debug_struct("IssuedCard")
            .field("card", &self.card)
            .field("image_len", &self.image.len())
            .field("existing", &self.existing)
            .finish()
    }
}

/// What [`IssuanceService::request_card`] answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Issuance {
    /// The card (new, or the one the phone has).
    Issued(Box<IssuedCard>),
    /// The fee order is open and not paid yet: the rider pays `order.amount`, then repeats the
    /// request.
    PaymentRequired {
        /// The fee order.
        order: Box<Order>,
        /// The fee and why (promotions applied or passed over).
        quote: Quote,
    },
}

/// Why a card was not issued.
#[derive(Debug)]
#[non_exhaustive]
pub enum IssuanceError {
    /// No such city.
    UnknownCity(String),
    /// The phone cannot carry a card of the city; the reason is for the rider.
    NotEligible(String),
    /// A request field that is empty, too long or not printable ASCII, or a channel or carrier
    /// that does not fit the phone's path.
    BadField {
        /// The field.
        field: &'static str,
        /// What is wrong.
        why: String,
    },
    /// No issuer keys for the city: nothing can be personalized.
    NoKeys(String),
    /// The fee order ID names an order of another phone, city, kind or amount.
    FeeOrderMismatch(MerchantOrderId),
    /// The fee order can no longer pay for a card (closed or refunded): use a new order ID.
    FeeOrderNotPayable {
        /// The order.
        order: MerchantOrderId,
        /// Its state.
        state: OrderState,
    },
    /// The promotion the fee order was quoted for ran out before the card was issued; the fee
    /// was refunded. Ask again with a new order ID.
    PromotionEnded(String),
    /// The card could not be made (serials exhausted, bad dates).
    Issue(IssueError),
    /// The city's pricing rules are unusable.
    Pricing(PricingError),
    /// The payment step failed.
    Payment(ServiceError),
    /// Storage failed; nothing of the step was written.
    Store(StoreError),
}

impl fmt::Display for IssuanceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IssuanceError::UnknownCity(city) => write!(f, "city: no city {city:?}"),
            IssuanceError::NotEligible(reason) => write!(f, "not eligible: {reason}"),
            IssuanceError::BadField { field, why } => write!(f, "{field}: {why}"),
            IssuanceError::NoKeys(city) => write!(f, "no issuer keys for {city}"),
            IssuanceError::FeeOrderMismatch(id) => {
                write!(f, "fee_order_id: order {id} is another phone's, city's or amount's")
            }
            IssuanceError::FeeOrderNotPayable { order, state } => {
                write!(f, "fee_order_id: order {order} is {}; use a new order ID", state.name())
            }
            IssuanceError::PromotionEnded(id) => {
                write!(f, "promotion {id} ran out before the card was issued; the fee was refunded")
            }
            IssuanceError::Issue(error) => write!(f, "{error}"),
            IssuanceError::Pricing(error) => write!(f, "{error}"),
            IssuanceError::Payment(error) => write!(f, "{error}"),
            IssuanceError::Store(error) => write!(f, "{error}"),
        }
    }
}

impl std::error::Error for IssuanceError {}

impl From<StoreError> for IssuanceError {
    fn from(error: StoreError) -> IssuanceError {
        IssuanceError::Store(error)
    }
}

impl From<sqlx::Error> for IssuanceError {
    fn from(error: sqlx::Error) -> IssuanceError {
        IssuanceError::Store(StoreError::Database(error))
    }
}

impl From<ServiceError> for IssuanceError {
    fn from(error: ServiceError) -> IssuanceError {
        IssuanceError::Payment(error)
    }
}

impl From<IssueError> for IssuanceError {
    fn from(error: IssueError) -> IssuanceError {
        IssuanceError::Issue(error)
    }
}

/// The platform's issuer side: cities, the device registry, the cities' pricing rules and the
/// issuers' keys. Payments and storage come with each call (`PaymentService` and its store).
#[derive(Debug, Clone)]
pub struct IssuanceService {
    cities: Cities,
    devices: DeviceRegistry,
    pricing: BTreeMap<String, PricingRules>,
    keys: IssuerKeyring,
}

impl IssuanceService {
    /// Issues cards of `cities` to the phones of `devices` with `keys`; every city charges its
    /// standard fee until [`set_pricing`](Self::set_pricing) gives it promotions.
    pub fn new(cities: Cities, devices: DeviceRegistry, keys: IssuerKeyring) -> IssuanceService {
        IssuanceService { cities, devices, pricing: BTreeMap::new(), keys }
    }

    /// Sets `city`'s pricing rules (its promotions).
    pub fn set_pricing(&mut self, city: &str, rules: PricingRules) -> Result<(), IssuanceError> {
        let city = self.city(city)?.name().to_owned();
        self.pricing.insert(city, rules);
        Ok(())
    }

    /// The cities.
    pub fn cities(&self) -> &Cities {
        &self.cities
    }

    /// The card `application` asks for, issued now at local time `at` (Unix `now_ms`), or the fee
    /// order to pay first. See the module documentation for the call order.
    pub async fn request_card<P: PaymentProvider>(
        &self,
        payments: &PaymentService<P>,
        application: &CardApplication,
        at: DateTime,
        now_ms: i64,
    ) -> Result<Issuance, IssuanceError> {
        let city = self.city(&application.city)?;
        self.check_phone(application, city)?;
        let store = payments.store();
        // A repeated request: the card the phone has, its fee order finished if a crash stopped it.
        let mut connection = store.reader().await?;
        let existing =
            store::card_of_device_in(&mut connection.db(), &application.phone.device_id, city.name()).await?;
        drop(connection);
        if let Some(card) = existing {
            return self.existing(payments, card, now_ms).await;
        }
        // No keys, no card: refuse before any fee order is opened, so nobody pays for nothing.
        if self.keys.for_issuing(city).is_none() {
            return Err(IssuanceError::NoKeys(city.name().to_owned()));
        }
        let rules = match self.pricing.get(city.name()) {
            Some(rules) => rules.clone(),
            None => PricingRules::for_city(city, Vec::new()).map_err(IssuanceError::Pricing)?,
        };
        let counts = store.promotion_signups(city.name()).await?;
        // Read again after the counts: a racing request of this phone that took a promotional
        // place committed its card in the same transaction, so a count that includes it comes
        // with its card — found here, not charged for.
        let mut connection = store.reader().await?;
        let existing =
            store::card_of_device_in(&mut connection.db(), &application.phone.device_id, city.name()).await?;
        drop(connection);
        if let Some(card) = existing {
            return self.existing(payments, card, now_ms).await;
        }
        let request = SignupRequest { maker: &application.phone.maker, channel: application.channel, at };
        let quote = match signup_fee(&rules, &request, |id| counts.get(id).copied().unwrap_or(0), false) {
            Decision::NewCard(quote) => quote,
            Decision::ExistingCard => unreachable!("asked without an existing card"),
        };
        if quote.fee_fen == 0 {
            let cap = cap_of(&rules, quote.promotion.as_deref());
            return match self.issue(payments, application, city, &quote, cap, None, at, now_ms).await? {
                Some(issued) => Ok(Issuance::Issued(Box::new(issued))),
                // The free promotion ran out meanwhile: the standard price, with its fee order.
                None => Box::pin(self.request_card(payments, application, at, now_ms)).await,
            };
        }
        self.with_fee(payments, application, city, &rules, quote, at, now_ms).await
    }

    /// A fee to take: open the fee order (quoted once, kept with the order), or issue once paid.
    #[allow(clippy::too_many_arguments)]
    async fn with_fee<P: PaymentProvider>(
        &self,
        payments: &PaymentService<P>,
        application: &CardApplication,
        city: &City,
        rules: &PricingRules,
        quote: Quote,
        at: DateTime,
        now_ms: i64,
    ) -> Result<Issuance, IssuanceError> {
        let id = &application.fee_order_id;
        let quoted = SignupOrder {
            merchant_order_id: id.clone(),
            device_id: application.phone.device_id.clone(),
            city: city.name().to_owned(),
            fee: Fen::new(i64::from(quote.fee_fen)).expect("a u32 is not negative"),
            promotion_id: quote.promotion.clone(),
        };
        let store = payments.store();
        let mut transaction = store.begin_write().await?;
        let known = store::order_in(&mut transaction.db(), id).await?;
        // A fee order keeps the quote it was opened with (a crash or a provider time-out may
        // have left the order without it: it gets today's quote, checked against its amount).
        let recorded = store::signup_order_in(&mut transaction.db(), id).await?;
        transaction.rollback().await?;
        let signup = recorded.clone().unwrap_or(quoted);
        if (signup.device_id.as_str(), signup.city.as_str()) != (application.phone.device_id.as_str(), city.name()) {
            return Err(IssuanceError::FeeOrderMismatch(id.clone()));
        }
        let order = match known {
            Some(order) => order,
            None => {
                let new = NewOrder {
                    merchant_order_id: id.clone(),
                    kind: OrderKind::SignUpFee,
                    card_id: None,
                    amount: signup.fee,
                    description: format!("{} card sign-up fee", city.display_name()),
                };
                match payments.open_order(new, now_ms).await {
                    Ok(order) => order,
                    Err(ServiceError::OrderIdConflict(id)) => return Err(IssuanceError::FeeOrderMismatch(id)),
                    Err(error) => return Err(error.into()),
                }
            }
        };
        if recorded.is_none() {
            // After the order row (its foreign key); a racing request's quote wins, and must agree.
            let mut transaction = store.begin_write().await?;
            store::insert_signup_order_in(&mut transaction.db(), &signup).await?;
            let stored = store::signup_order_in(&mut transaction.db(), id).await?;
            transaction.commit().await?;
            if stored.as_ref() != Some(&signup) {
                return Err(IssuanceError::FeeOrderMismatch(id.clone()));
            }
        }
        if order.kind != OrderKind::SignUpFee || order.amount != signup.fee {
            return Err(IssuanceError::FeeOrderMismatch(id.clone()));
        }
        match order.state {
            OrderState::Created => {
                let quote = Quote {
                    fee_fen: u32::try_from(signup.fee.get()).expect("quoted from a u32"),
                    promotion: signup.promotion_id.clone(),
                    ..quote
                };
                Ok(Issuance::PaymentRequired { order: Box::new(order), quote })
            }
            OrderState::Paid | OrderState::Issuing => {
                let order = payments.start_delivery(id, now_ms).await?;
                let quote = Quote {
                    fee_fen: u32::try_from(signup.fee.get()).expect("quoted from a u32"),
                    promotion: signup.promotion_id.clone(),
                    ..quote
                };
                let cap = cap_of(rules, quote.promotion.as_deref());
                match self.issue(payments, application, city, &quote, cap, Some(&order), at, now_ms).await? {
                    Some(issued) => {
                        payments.confirm_delivery(id, None, now_ms).await?;
                        Ok(Issuance::Issued(Box::new(issued)))
                    }
                    None => {
                        payments.refund(id, now_ms).await?;
                        Err(IssuanceError::PromotionEnded(quote.promotion.unwrap_or_default()))
                    }
                }
            }
            state => Err(IssuanceError::FeeOrderNotPayable { order: id.clone(), state }),
        }
    }

    /// One transaction: the promotional count (unless its cap is reached: `None`, nothing
    /// written), the serial, the card. A card the phone got meanwhile is returned instead.
    #[allow(clippy::too_many_arguments)]
    async fn issue<P: PaymentProvider>(
        &self,
        payments: &PaymentService<P>,
        application: &CardApplication,
        city: &City,
        quote: &Quote,
        cap: Option<u32>,
        fee_order: Option<&Order>,
        at: DateTime,
        now_ms: i64,
    ) -> Result<Option<IssuedCard>, IssuanceError> {
        let keys = self.keys.for_issuing(city).ok_or_else(|| IssuanceError::NoKeys(city.name().to_owned()))?;
        let store = payments.store();
        let mut transaction = store.begin_write().await?;
        if let Some(card) =
            store::card_of_device_in(&mut transaction.db(), &application.phone.device_id, city.name()).await?
        {
            transaction.rollback().await?;
            return Ok(Some(self.image(card, true)?));
        }
        if let Some(promotion) = &quote.promotion {
            if !store::count_promotion_in(&mut transaction.db(), city.name(), promotion, cap).await? {
                transaction.rollback().await?;
                return Ok(None);
            }
        }
        let sequence = store::allocate_sequence_in(&mut transaction.db(), city.name()).await?;
        let serial = Serial::from_parts(city.city_code(), sequence)?;
        let request = city.card_request(keys.key_version, serial, &at)?;
        let phone = &application.phone;
        let card = PhoneCard {
            card_id: CardId::parse(&serial.to_string()).map_err(|e| IssuanceError::Store(StoreError::Ledger(e)))?,
            city: city.name().to_owned(),
            device_id: phone.device_id.clone(),
            se_id: phone.se_id.clone(),
            maker: phone.maker.clone(),
            model: phone.model.clone(),
            carrier: phone.carrier.clone(),
            key_version: keys.key_version,
            valid_from: request.valid_from,
            valid_to: request.valid_to,
            fee: Fen::new(i64::from(quote.fee_fen)).expect("a u32 is not negative"),
            promotion_id: quote.promotion.clone(),
            fee_order_id: fee_order.map(|order| order.merchant_order_id.clone()),
            issued_at_ms: now_ms,
        };
        if !store::insert_card_in(&mut transaction.db(), &card).await? {
            // Another request of the same phone won (PostgreSQL): its card, not a second one.
            transaction.rollback().await?;
            let mut connection = store.reader().await?;
            let card = store::card_of_device_in(&mut connection.db(), &phone.device_id, city.name())
                .await?
                .ok_or_else(|| corrupt(&card.card_id, "conflicting card vanished"))?;
            return Ok(Some(self.image(card, true)?));
        }
        transaction.commit().await?;
        Ok(Some(IssuedCard { image: request.image(keys.master.clone())?, card, existing: false }))
    }

    /// `city`'s pricing rules (the standard fee and no promotions unless set).
    pub fn pricing(&self, city: &str) -> Result<PricingRules, IssuanceError> {
        let city = self.city(city)?;
        match self.pricing.get(city.name()) {
            Some(rules) => Ok(rules.clone()),
            None => PricingRules::for_city(city, Vec::new()).map_err(IssuanceError::Pricing),
        }
    }

    /// A card of `city` for `phone` without a fee (a transfer is not a sign-up), or the card the
    /// phone has in the city already (`existing`). The phone is checked as for a sign-up.
    pub(crate) async fn issue_without_fee<P: PaymentProvider>(
        &self,
        payments: &PaymentService<P>,
        phone: &Phone,
        city: &str,
        channel: Channel,
        at: DateTime,
        now_ms: i64,
    ) -> Result<IssuedCard, IssuanceError> {
        let city = self.city(city)?;
        // Never used: no fee is charged, so no fee order is opened.
        let fee_order_id = MerchantOrderId::parse("no-fee").expect("a valid constant order ID");
        let application = CardApplication { phone: phone.clone(), city: city.name().to_owned(), channel, fee_order_id };
        self.check_phone(&application, city)?;
        let quote =
            Quote { fee_fen: 0, standard_fee_fen: city.signup_fee_fen(), promotion: None, passed_over: Vec::new() };
        self.issue(payments, &application, city, &quote, None, None, at, now_ms)
            .await?
            .ok_or_else(|| IssuanceError::PromotionEnded(String::new()))
    }

    /// The image of `card` again (a repeated claim).
    pub(crate) fn image_of(&self, card: PhoneCard) -> Result<IssuedCard, IssuanceError> {
        self.image(card, true)
    }

    /// The phone's existing card; a fee order a crash left `issuing` is finished (it is earned).
    async fn existing<P: PaymentProvider>(
        &self,
        payments: &PaymentService<P>,
        card: PhoneCard,
        now_ms: i64,
    ) -> Result<Issuance, IssuanceError> {
        if let Some(id) = &card.fee_order_id {
            if payments.order(id).await?.state == OrderState::Issuing {
                payments.confirm_delivery(id, None, now_ms).await?;
            }
        }
        Ok(Issuance::Issued(Box::new(self.image(card, true)?)))
    }

    /// The image of a recorded card, personalized again (the same keys and files give the same
    /// image; the database never holds card keys).
    fn image(&self, card: PhoneCard, existing: bool) -> Result<IssuedCard, IssuanceError> {
        let city = self.city(&card.city)?;
        let keys = self
            .keys
            .for_issuing(city)
            .filter(|keys| keys.key_version == card.key_version)
            .ok_or_else(|| IssuanceError::NoKeys(format!("{} key version {}", city.name(), card.key_version)))?;
        let issuer = IssuerIdentity { issuer_id: city.issuer_id(), key_version: card.key_version };
        let request = CardRequest::anonymous(issuer, card.serial()?, card.valid_from, card.valid_to);
        Ok(IssuedCard { image: request.image(keys.master.clone())?, card, existing })
    }

    fn city(&self, name: &str) -> Result<&City, IssuanceError> {
        self.cities.get(name).ok_or_else(|| IssuanceError::UnknownCity(name.to_owned()))
    }

    /// Fields well formed, the phone eligible, the channel and carrier fitting its path.
    fn check_phone(&self, application: &CardApplication, city: &City) -> Result<(), IssuanceError> {
        let phone = &application.phone;
        for (field, value) in [
            ("device_id", phone.device_id.as_str()),
            ("se_id", phone.se_id.as_str()),
            ("maker", phone.maker.as_str()),
            ("model", phone.model.as_str()),
        ] {
            check_text(field, value)?;
        }
        if let Some(carrier) = &phone.carrier {
            check_text("carrier", carrier)?;
        }
        let bad = |field, why: &str| Err(IssuanceError::BadField { field, why: why.to_owned() });
        match self.devices.eligibility(&phone.maker, &phone.model, city.name(), &self.cities) {
            Eligibility::NotSupported(why) => Err(IssuanceError::NotEligible(why.to_string())),
            Eligibility::EmbeddedSe { .. } if application.channel == Channel::CarrierHall => {
                bad("channel", "an embedded-SE phone signs up in the maker's wallet app or the city's app")
            }
            Eligibility::NfcSim { .. } if application.channel != Channel::CarrierHall => {
                bad("channel", "an NFC-SIM card is issued through the carrier's service hall")
            }
            Eligibility::NfcSim { .. } if phone.carrier.is_none() => {
                bad("carrier", "an NFC-SIM card needs the SIM's carrier")
            }
            _ => Ok(()),
        }
    }
}

fn cap_of(rules: &PricingRules, promotion: Option<&str>) -> Option<u32> {
    promotion.and_then(|id| rules.promotions().iter().find(|p| p.id == id)).and_then(|p| p.cap)
}

pub(crate) fn check_text(field: &'static str, value: &str) -> Result<(), IssuanceError> {
    let good =
        !value.trim().is_empty() && value.len() <= PHONE_FIELD_LENGTH_MAX && value.chars().all(|c| !c.is_control());
    if good {
        Ok(())
    } else {
        Err(IssuanceError::BadField {
            field,
            why: format!("must be 1 to {PHONE_FIELD_LENGTH_MAX} bytes of printable text"),
        })
    }
}

fn corrupt(card: &CardId, why: &str) -> StoreError {
    StoreError::Corrupt { table: "phone_cards", key: card.to_string(), why: why.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_fields_are_printable_and_bounded() {
        assert!(check_text("device_id", "a1b2-c3").is_ok());
        assert!(check_text("maker", "小米").is_ok());
        for bad in ["", "   ", "a\nb", "\u{0}", &"x".repeat(PHONE_FIELD_LENGTH_MAX + 1)] {
            let error = check_text("se_id", bad).unwrap_err();
            assert!(error.to_string().starts_with("se_id: must be 1 to 64 bytes"), "{bad:?}: {error}");
        }
    }
}
