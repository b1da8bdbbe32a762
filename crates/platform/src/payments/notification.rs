//! The provider's asynchronous paid notification and its signature.
//!
//! The provider signs the exact bytes of the JSON body with Ed25519 (RFC 8032); the service
//! verifies the signature over the bytes it received *before* parsing them, so nothing of an
//! altered body is ever read. (WeChat Pay signs with RSA-SHA256 and Alipay with RSA2; the shape —
//! body bytes plus a detached signature checked with the provider's public key — is the same.)

use std::fmt;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use super::MerchantOrderId;
use crate::ledger::Fen;

/// Longest notification body accepted; a real one is a few hundred bytes.
pub const NOTIFICATION_BODY_LENGTH_MAX: usize = 4_096;

/// What a verified notification says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaidNotification {
    /// The provider's ID of this notification (the same for its duplicates).
    pub notification_id: String,
    /// Our order.
    pub merchant_order_id: MerchantOrderId,
    /// The provider's transaction ID.
    pub transaction_id: String,
    /// The amount paid.
    pub amount_fen: Fen,
    /// When, Unix milliseconds.
    pub paid_at_ms: i64,
}

/// A notification as it travels: the body bytes (JSON text) and the hex Ed25519 signature over
/// them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedNotification {
    /// The JSON body, exactly as signed.
    pub body: String,
    /// 64 bytes of Ed25519 signature, hex.
    pub signature: String,
}

/// Why a notification was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NotificationError {
    /// Longer than [`NOTIFICATION_BODY_LENGTH_MAX`].
    TooLong,
    /// The signature is not 128 hex digits.
    BadSignatureEncoding,
    /// The signature does not verify with the provider's key: forged or altered.
    BadSignature,
    /// Signed, but not a paid notification (the JSON error).
    BadBody(String),
}

impl fmt::Display for NotificationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotificationError::TooLong => {
                write!(f, "notification longer than {NOTIFICATION_BODY_LENGTH_MAX} bytes")
            }
            NotificationError::BadSignatureEncoding => f.write_str("notification signature is not 128 hex digits"),
            NotificationError::BadSignature => {
                f.write_str("notification signature does not verify with the provider's key")
            }
            NotificationError::BadBody(why) => write!(f, "notification body: {why}"),
        }
    }
}

impl std::error::Error for NotificationError {}

impl SignedNotification {
    /// Signs `notification` (the provider's side).
    pub fn sign(key: &SigningKey, notification: &PaidNotification) -> SignedNotification {
        let body = serde_json::to_string(notification).expect("a notification always serializes");
        let signature = key.sign(body.as_bytes());
        SignedNotification { body, signature: hex::encode(signature.to_bytes()) }
    }

    /// Verifies the signature over the body bytes with the provider's key, then parses the body.
    pub fn verify(&self, key: &VerifyingKey) -> Result<PaidNotification, NotificationError> {
        if self.body.len() > NOTIFICATION_BODY_LENGTH_MAX {
            return Err(NotificationError::TooLong);
        }
        verify_signature(key, self.body.as_bytes(), &self.signature)?;
        serde_json::from_str(&self.body).map_err(|error| NotificationError::BadBody(error.to_string()))
    }
}

/// Checks a hex Ed25519 signature over `message` (strict verification: no malleable or
/// small-order forms).
fn verify_signature(key: &VerifyingKey, message: &[u8], signature_hex: &str) -> Result<(), NotificationError> {
    let mut bytes = [0u8; 64];
    hex::decode_to_slice(signature_hex, &mut bytes).map_err(|_| NotificationError::BadSignatureEncoding)?;
    let signature = Signature::from_bytes(&bytes);
    key.verify_strict(message, &signature).map_err(|_| NotificationError::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn notification() -> PaidNotification {
        PaidNotification {
            notification_id: "N1".to_owned(),
            merchant_order_id: MerchantOrderId::parse("T20261125-000001").expect("valid"),
            transaction_id: "4200001234".to_owned(),
            amount_fen: Fen::new(5_000).expect("positive"),
            paid_at_ms: 1_795_000_000_000,
        }
    }

    /// RFC 8032 section 7.1, TEST 2: the verifier accepts a signature made elsewhere.
    #[test]
    fn an_rfc_8032_signature_verifies() {
        let public = hex::decode("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c").expect("hex");
        let key = VerifyingKey::from_bytes(&public.try_into().expect("32 bytes")).expect("a valid point");
        let signature = "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da\
                         085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00";
        assert_eq!(verify_signature(&key, &[0x72], signature), Ok(()));
        assert_eq!(verify_signature(&key, &[0x73], signature), Err(NotificationError::BadSignature));
        // The secret key of the same vector gives the same public key.
        let secret = hex::decode("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb").expect("hex");
        let signing = SigningKey::from_bytes(&secret.try_into().expect("32 bytes"));
        assert_eq!(signing.verifying_key(), key);
        assert_eq!(hex::encode(signing.sign(&[0x72]).to_bytes()), signature);
    }

    #[test]
    fn a_signed_notification_verifies_and_round_trips() {
        let signed = SignedNotification::sign(&key(1), &notification());
        assert_eq!(signed.verify(&key(1).verifying_key()), Ok(notification()));
    }

    #[test]
    fn forged_and_altered_notifications_are_refused() {
        let provider = key(1).verifying_key();
        // Signed by someone else's key.
        let forged = SignedNotification::sign(&key(2), &notification());
        assert_eq!(forged.verify(&provider), Err(NotificationError::BadSignature));
        // The amount changed after signing.
        let mut altered = SignedNotification::sign(&key(1), &notification());
        altered.body = altered.body.replace("5000", "500000");
        assert_ne!(altered.body, SignedNotification::sign(&key(1), &notification()).body);
        assert_eq!(altered.verify(&provider), Err(NotificationError::BadSignature));
        // One bit of the signature flipped.
        let mut flipped = SignedNotification::sign(&key(1), &notification());
        let last = flipped.signature.pop().expect("128 digits");
        flipped.signature.push(if last == '0' { '1' } else { '0' });
        assert_eq!(flipped.verify(&provider), Err(NotificationError::BadSignature));
        // Not hex, too short, too long a body.
        let mut garbled = SignedNotification::sign(&key(1), &notification());
        garbled.signature = "zz".repeat(64);
        assert_eq!(garbled.verify(&provider), Err(NotificationError::BadSignatureEncoding));
        garbled.signature = "00".to_owned();
        assert_eq!(garbled.verify(&provider), Err(NotificationError::BadSignatureEncoding));
        garbled.body = " ".repeat(NOTIFICATION_BODY_LENGTH_MAX + 1);
        assert_eq!(garbled.verify(&provider), Err(NotificationError::TooLong));
    }

    #[test]
    fn a_signed_body_that_is_not_a_notification_is_refused() {
        let key = key(1);
        let body = r#"{"merchant_order_id":"T20261125-000001"}"#.to_owned();
        let signature = hex::encode(key.sign(body.as_bytes()).to_bytes());
        let signed = SignedNotification { body, signature };
        assert!(matches!(signed.verify(&key.verifying_key()), Err(NotificationError::BadBody(_))));
    }
}
