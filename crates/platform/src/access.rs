//! Who may act: a **phone** registers once (its device, SE, maker, model, carrier) and gets a
//! bearer token bound to that device; an **operator** holds an API key scoped to one city's
//! issuer. Both are 256 random bits from the system, shown once and stored only as their SHA-256
//! (hex), so the database never holds a secret a caller could present; a presented secret is
//! looked up by its hash and the hashes compared again in constant time (`subtle`).
//!
//! What a phone may see or do (its own cards and their orders) and what an operator may (its
//! city's cards) is decided by the HTTP service from what this module returns.

use std::fmt;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::cities::Cities;
use crate::issuance::{check_text, IssuanceError, Phone};
use crate::store::{Store, StoreError};

/// What a phone token starts with.
pub const PHONE_TOKEN_PREFIX: &str = "ytp_";
/// What an operator API key starts with.
pub const OPERATOR_KEY_PREFIX: &str = "yto_";
/// What a phone's reset code starts with ([`reset_phone`]).
pub const RESET_CODE_PREFIX: &str = "ytr_";
/// How long a reset code may be used ([`reset_phone`]): a day.
pub const RESET_CODE_VALID_MS: i64 = 24 * 60 * 60 * 1_000;
/// Random bytes in a token or key (256 bits).
pub const SECRET_BYTES: usize = 32;
/// Random bytes in a phone or key ID (not secret: IDs name, they do not authorize).
const ID_BYTES: usize = 8;
/// Longest operator key name.
pub const OPERATOR_NAME_LENGTH_MAX: usize = 64;

/// A token or key as shown once to its holder. Zeroized on drop; `Debug` does not show it.
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// `prefix` and [`SECRET_BYTES`] random bytes, lower-case hex.
    fn generate(prefix: &str) -> Result<Secret, getrandom::Error> {
        let mut bytes = Zeroizing::new([0u8; SECRET_BYTES]);
        getrandom::fill(bytes.as_mut())?;
        let mut text = Zeroizing::new(String::with_capacity(prefix.len() + 2 * SECRET_BYTES));
        text.push_str(prefix);
        text.push_str(&Zeroizing::new(hex::encode(bytes.as_ref())));
        Ok(Secret(text))
    }

    /// The secret itself: give it to its holder once, never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// The stored form of a secret: SHA-256, lower-case hex. A high-entropy random secret needs no
/// salt or slow hash: nobody can guess one to test against the hash.
pub fn secret_sha256(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// `presented` has the shape of a secret with `prefix` (so a phone token is never taken for an
/// operator key, nor the reverse, and junk is refused before any lookup).
fn well_formed(presented: &str, prefix: &str) -> bool {
    presented.strip_prefix(prefix).is_some_and(|rest| {
        rest.len() == 2 * SECRET_BYTES && rest.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// Constant-time equality of two stored hashes.
pub(crate) fn hashes_match(stored: &str, presented: &str) -> bool {
    stored.as_bytes().ct_eq(presented.as_bytes()).into()
}

fn random_id(prefix: &str) -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; ID_BYTES];
    getrandom::fill(&mut bytes)?;
    Ok(format!("{prefix}{}", hex::encode(bytes)))
}

/// A registered phone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegisteredPhone {
    /// The platform's ID of the registration (`ph_` and 16 hex digits).
    pub phone_id: String,
    /// The phone as it registered: device, SE, maker, model, carrier.
    pub phone: Phone,
    /// When, Unix milliseconds.
    pub registered_at_ms: i64,
}

/// An operator's API key (never the key itself).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperatorKey {
    /// The key's ID (`opk_` and 16 hex digits): what `list` shows and `revoke` takes.
    pub key_id: String,
    /// The city whose cards the key may read.
    pub city: String,
    /// A name for people (who holds it).
    pub name: String,
    /// When, Unix milliseconds.
    pub created_at_ms: i64,
    /// When it was revoked; a revoked key authorizes nothing.
    pub revoked_at_ms: Option<i64>,
}

/// The `city` of a clearing house's key: it reads what spans cities (the day's settlement between
/// participants, ridership, the platform's ledger) and the cards of every city, and acts for none.
pub const CLEARING_HOUSE: &str = "*";

impl OperatorKey {
    /// Whether this is a clearing house's key ([`CLEARING_HOUSE`]) rather than a city's.
    pub fn is_clearing_house(&self) -> bool {
        self.city == CLEARING_HOUSE
    }

    /// Whether the key may read the cards of `city`: its own city's, or every city's for the
    /// clearing house.
    pub fn reads_city(&self, city: &str) -> bool {
        self.is_clearing_house() || self.city == city
    }
}

/// Why a phone or an operator key could not be registered.
#[derive(Debug)]
#[non_exhaustive]
pub enum AccessError {
    /// A field that cannot be used.
    BadField {
        /// The field.
        field: &'static str,
        /// Why.
        why: String,
    },
    /// The device is registered already (its token was shown once, at registration).
    PhoneRegistered(String),
    /// The token presented is not the phone's any more (another request replaced it).
    TokenReplaced,
    /// No such city.
    UnknownCity(String),
    /// No system randomness for the secret.
    Randomness(getrandom::Error),
    /// Storage failed.
    Store(StoreError),
}

impl fmt::Display for AccessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AccessError::BadField { field, why } => write!(f, "{field}: {why}"),
            AccessError::PhoneRegistered(device) => write!(f, "device {device} is registered already"),
            AccessError::TokenReplaced => write!(f, "the token was replaced by another request"),
            AccessError::UnknownCity(city) => write!(f, "no city {city}"),
            AccessError::Randomness(error) => write!(f, "no system randomness: {error}"),
            AccessError::Store(error) => write!(f, "{error}"),
        }
    }
}

impl std::error::Error for AccessError {}

impl From<StoreError> for AccessError {
    fn from(error: StoreError) -> AccessError {
        AccessError::Store(error)
    }
}

/// `value` of `field` checked as a card request checks its fields: 1 to 64 bytes of printable text.
fn checked_text(field: &'static str, value: &str) -> Result<(), AccessError> {
    check_text(field, value).map_err(|error| match error {
        IssuanceError::BadField { field, why } => AccessError::BadField { field, why },
        other => AccessError::BadField { field, why: other.to_string() },
    })
}

/// Registers `phone` (fields as a card request checks them: 1 to 64 bytes of printable text)
/// and returns it with its token, shown this once. A device registers once:
/// [`AccessError::PhoneRegistered`] the second time.
pub async fn register_phone(
    store: &Store,
    phone: &Phone,
    now_ms: i64,
) -> Result<(RegisteredPhone, Secret), AccessError> {
    checked_text("device_id", &phone.device_id)?;
    checked_text("se_id", &phone.se_id)?;
    checked_text("maker", &phone.maker)?;
    checked_text("model", &phone.model)?;
    if let Some(carrier) = &phone.carrier {
        checked_text("carrier", carrier)?;
    }
    let token = Secret::generate(PHONE_TOKEN_PREFIX).map_err(AccessError::Randomness)?;
    let registered = RegisteredPhone {
        phone_id: random_id("ph_").map_err(AccessError::Randomness)?,
        phone: phone.clone(),
        registered_at_ms: now_ms,
    };
    if !store.insert_phone(&registered, &secret_sha256(token.expose())).await? {
        return Err(AccessError::PhoneRegistered(phone.device_id.clone()));
    }
    Ok((registered, token))
}

/// Resets the registration of `device_id` (a rider who lost the phone's token, after the support
/// desk has checked who asks): the token in use works no more from now on, and the code returned,
/// shown this once, lets the same device with the same SE register again
/// ([`register_phone_again`], with a token of its own) within [`RESET_CODE_VALID_MS`]. Returns
/// the code and until when it may be used, Unix milliseconds. Its cards stay the device's.
/// `None`: no such device.
pub async fn reset_phone(store: &Store, device_id: &str, now_ms: i64) -> Result<Option<(Secret, i64)>, AccessError> {
    checked_text("device_id", device_id)?;
    let code = Secret::generate(RESET_CODE_PREFIX).map_err(AccessError::Randomness)?;
    // A token nobody was given, in place of the lost one.
    let unusable = Secret::generate(PHONE_TOKEN_PREFIX).map_err(AccessError::Randomness)?;
    let until_ms = now_ms.saturating_add(RESET_CODE_VALID_MS);
    let reset = store
        .reset_phone(device_id, &secret_sha256(unusable.expose()), &secret_sha256(code.expose()), until_ms)
        .await?;
    Ok(reset.then_some((code, until_ms)))
}

/// Registers `phone` again after [`reset_phone`], with `proposed` — a new token the phone made
/// (`ytp_` and 64 lower-case hex digits of its randomness) and kept before sending, as for a
/// rotation, so that an answer lost on the way loses nothing: the code must be the device's reset
/// code, unused and not expired, and `phone` the same device and SE. Returns the registration (as
/// first made); from now on the proposed token is its token and the code is used up. A wrong,
/// used or expired code, or another device or SE, is [`AccessError::PhoneRegistered`] alike
/// (nothing is told to a guesser); a proposal that is not a token of randomness,
/// [`AccessError::BadField`].
pub async fn register_phone_again(
    store: &Store,
    phone: &Phone,
    code: &str,
    proposed: &str,
    now_ms: i64,
) -> Result<RegisteredPhone, AccessError> {
    let refused = || AccessError::PhoneRegistered(phone.device_id.clone());
    let token_sha256 = proposed_sha256(proposed)?;
    if !well_formed(code, RESET_CODE_PREFIX) {
        return Err(refused());
    }
    let claimed =
        store.claim_phone_reset(&phone.device_id, &phone.se_id, &secret_sha256(code), &token_sha256, now_ms).await;
    match claimed {
        Ok(true) => store.phone_of_device(&phone.device_id).await?.ok_or_else(refused),
        Ok(false) => Err(refused()),
        Err(error) if error.is_unique_violation() => Err(unusable_token("not usable: propose another")),
        Err(error) => Err(error.into()),
    }
}

/// The phone whose token `presented` is, if any (a malformed token is none).
pub async fn phone_by_token(store: &Store, presented: &str) -> Result<Option<RegisteredPhone>, StoreError> {
    if !well_formed(presented, PHONE_TOKEN_PREFIX) {
        return Ok(None);
    }
    store.phone_by_token_sha256(&secret_sha256(presented)).await
}

/// Distinct hex digits a proposed phone token must show ([`rotate_phone_token`]).
pub const PROPOSED_TOKEN_DIGITS_MIN: usize = 8;

/// Makes `proposed` — a new token the phone made (`ytp_` and 64 lower-case hex digits of its
/// randomness) and kept before sending — `phone`'s token in place of the one whose SHA-256 is
/// `presented_sha256`: from now on only the new one is the phone's. The phone chooses it so that
/// an answer lost on the way loses nothing: the phone finds out which of its two tokens is
/// taken. Of two rotations from the same token one wins; the other is
/// [`AccessError::TokenReplaced`].
pub async fn rotate_phone_token(
    store: &Store,
    phone: &RegisteredPhone,
    presented_sha256: &str,
    proposed: &str,
) -> Result<(), AccessError> {
    let new = proposed_sha256(proposed)?;
    if hashes_match(&new, presented_sha256) {
        return Err(unusable_token("the token in use: propose a new one"));
    }
    match store.replace_phone_token(&phone.phone_id, presented_sha256, &new).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(AccessError::TokenReplaced),
        Err(error) if error.is_unique_violation() => Err(unusable_token("not usable: propose another")),
        Err(error) => Err(error.into()),
    }
}

fn unusable_token(why: &str) -> AccessError {
    AccessError::BadField { field: "token", why: why.to_owned() }
}

/// The stored form of a token the phone proposes, once checked to be one made of randomness.
fn proposed_sha256(proposed: &str) -> Result<String, AccessError> {
    if !well_formed(proposed, PHONE_TOKEN_PREFIX) {
        return Err(unusable_token("a phone token is `ytp_` and 64 lower-case hex digits"));
    }
    // 256 random bits show nearly every hex digit (fewer than 8 of the 16: about one chance in
    // 10^30); a token made by hand, not randomness, does not.
    let mut digits = proposed.as_bytes()[PHONE_TOKEN_PREFIX.len()..].to_vec();
    digits.sort_unstable();
    digits.dedup();
    if digits.len() < PROPOSED_TOKEN_DIGITS_MIN {
        return Err(unusable_token("not random: make it from 32 bytes of system randomness"));
    }
    Ok(secret_sha256(proposed))
}

/// A new API key for an operator of `city`, or for the clearing house ([`CLEARING_HOUSE`]),
/// shown this once.
pub async fn new_operator_key(
    store: &Store,
    cities: &Cities,
    city: &str,
    name: &str,
    now_ms: i64,
) -> Result<(OperatorKey, Secret), AccessError> {
    let city = match city {
        CLEARING_HOUSE => CLEARING_HOUSE.to_owned(),
        city => cities.get(city).ok_or_else(|| AccessError::UnknownCity(city.to_owned()))?.name().to_owned(),
    };
    let name = name.trim();
    if name.is_empty() || name.len() > OPERATOR_NAME_LENGTH_MAX || name.chars().any(char::is_control) {
        return Err(AccessError::BadField {
            field: "name",
            why: format!("must be 1 to {OPERATOR_NAME_LENGTH_MAX} bytes of printable text"),
        });
    }
    let secret = Secret::generate(OPERATOR_KEY_PREFIX).map_err(AccessError::Randomness)?;
    let key = OperatorKey {
        key_id: random_id("opk_").map_err(AccessError::Randomness)?,
        city,
        name: name.to_owned(),
        created_at_ms: now_ms,
        revoked_at_ms: None,
    };
    store.insert_operator_key(&key, &secret_sha256(secret.expose())).await?;
    Ok((key, secret))
}

/// The operator key `presented` is, if any and not revoked (a malformed key is none).
pub async fn operator_by_key(store: &Store, presented: &str) -> Result<Option<OperatorKey>, StoreError> {
    if !well_formed(presented, OPERATOR_KEY_PREFIX) {
        return Ok(None);
    }
    let key = store.operator_key_by_sha256(&secret_sha256(presented)).await?;
    Ok(key.filter(|key| key.revoked_at_ms.is_none()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_prefixed_random_hex_and_hidden_from_debug() {
        let a = Secret::generate(PHONE_TOKEN_PREFIX).unwrap();
        let b = Secret::generate(PHONE_TOKEN_PREFIX).unwrap();
        assert!(well_formed(a.expose(), PHONE_TOKEN_PREFIX), "{}", a.expose().len());
        assert_ne!(a.expose(), b.expose());
        assert!(!well_formed(a.expose(), OPERATOR_KEY_PREFIX), "a phone token is no operator key");
        assert_eq!(format!("{a:?}"), "Secret(…)");
        assert!(!well_formed("ytp_", PHONE_TOKEN_PREFIX));
        assert!(!well_formed(&a.expose().to_uppercase(), PHONE_TOKEN_PREFIX));
        assert!(!well_formed(&format!("{}0", a.expose()), PHONE_TOKEN_PREFIX));
    }

    #[test]
    fn the_stored_hash_is_sha256_of_the_secret() {
        // `printf abc | sha256sum` (FIPS 180-2's example).
        assert_eq!(secret_sha256("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert!(hashes_match(&secret_sha256("abc"), &secret_sha256("abc")));
        assert!(!hashes_match(&secret_sha256("abc"), &secret_sha256("abd")));
    }
}
