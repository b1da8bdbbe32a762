//! Registered phones and operator API keys, by the SHA-256 of their secrets.

use super::cards::{card_from_row, CARD_COLUMNS};
use super::sql::{query, Row};
use super::{column, Store, StoreError};
use crate::access::{hashes_match, OperatorKey, RegisteredPhone};
use crate::issuance::{Phone, PhoneCard};

/// Most operator keys [`Store::operator_keys`] lists.
pub const OPERATOR_KEYS_LISTED_MAX: u32 = 1_000;
/// Most cards [`Store::cards_of_device`] lists (one per city: ten regions).
const DEVICE_CARDS_LISTED_MAX: i64 = 100;

const PHONE_COLUMNS: &str = "phone_id, device_id, se_id, maker, model, carrier, registered_at_ms, token_sha256";
const KEY_COLUMNS: &str = "key_id, city, name, created_at_ms, revoked_at_ms, key_sha256";

impl Store {
    /// Records a registered phone with its token's hash; `false` if its device is registered
    /// already (nothing written).
    pub(crate) async fn insert_phone(&self, phone: &RegisteredPhone, token_sha256: &str) -> Result<bool, StoreError> {
        let mut transaction = self.begin_write().await?;
        let inserted = query(format!(
            "INSERT INTO phones ({PHONE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING"
        ))
        .bind(phone.phone_id.as_str())
        .bind(phone.phone.device_id.as_str())
        .bind(phone.phone.se_id.as_str())
        .bind(phone.phone.maker.as_str())
        .bind(phone.phone.model.as_str())
        .bind(phone.phone.carrier.clone())
        .bind(phone.registered_at_ms)
        .bind(token_sha256)
        .execute(&mut transaction.db())
        .await?;
        transaction.commit().await?;
        Ok(inserted == 1)
    }

    /// Replaces phone `phone_id`'s token, if it is still the one hashing to `old_sha256`
    /// (`false`: it was replaced meanwhile, nothing written).
    pub(crate) async fn replace_phone_token(
        &self,
        phone_id: &str,
        old_sha256: &str,
        new_sha256: &str,
    ) -> Result<bool, StoreError> {
        let mut transaction = self.begin_write().await?;
        let replaced = query("UPDATE phones SET token_sha256 = $1 WHERE phone_id = $2 AND token_sha256 = $3")
            .bind(new_sha256)
            .bind(phone_id)
            .bind(old_sha256)
            .execute(&mut transaction.db())
            .await?;
        transaction.commit().await?;
        Ok(replaced == 1)
    }

    /// Resets the registration of `device_id`: its token becomes the one hashing to
    /// `unusable_sha256` (which nobody holds), and the code hashing to `code_sha256` may register
    /// the device again until `until_ms`. `false`: no such device.
    pub(crate) async fn reset_phone(
        &self,
        device_id: &str,
        unusable_sha256: &str,
        code_sha256: &str,
        until_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut transaction = self.begin_write().await?;
        let updated =
            query("UPDATE phones SET token_sha256 = $1, reset_sha256 = $2, reset_until_ms = $3 WHERE device_id = $4")
                .bind(unusable_sha256)
                .bind(code_sha256)
                .bind(until_ms)
                .bind(device_id)
                .execute(&mut transaction.db())
                .await?;
        transaction.commit().await?;
        Ok(updated == 1)
    }

    /// Gives the reset registration of `device_id` on SE `se_id` the token hashing to
    /// `token_sha256`, if `code_sha256` is its reset code's and the code has not expired at
    /// `now_ms`; the code is used up. `false`: nothing written.
    pub(crate) async fn claim_phone_reset(
        &self,
        device_id: &str,
        se_id: &str,
        code_sha256: &str,
        token_sha256: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut transaction = self.begin_write().await?;
        let updated = query(
            "UPDATE phones SET token_sha256 = $1, reset_sha256 = NULL, reset_until_ms = NULL \
             WHERE device_id = $2 AND se_id = $3 AND reset_sha256 = $4 AND reset_until_ms > $5",
        )
        .bind(token_sha256)
        .bind(device_id)
        .bind(se_id)
        .bind(code_sha256)
        .bind(now_ms)
        .execute(&mut transaction.db())
        .await?;
        transaction.commit().await?;
        Ok(updated == 1)
    }

    /// The phone whose token hashes to `token_sha256`.
    pub(crate) async fn phone_by_token_sha256(
        &self,
        token_sha256: &str,
    ) -> Result<Option<RegisteredPhone>, StoreError> {
        let row = query(format!("SELECT {PHONE_COLUMNS} FROM phones WHERE token_sha256 = $1"))
            .bind(token_sha256)
            .fetch_optional(&mut self.reader().await?.db())
            .await?;
        let Some(row) = row else { return Ok(None) };
        let stored: String = column(&row, 7)?;
        hashes_match(&stored, token_sha256).then(|| phone_from_row(&row)).transpose()
    }

    /// The registered phone of `device_id`.
    pub async fn phone_of_device(&self, device_id: &str) -> Result<Option<RegisteredPhone>, StoreError> {
        let row = query(format!("SELECT {PHONE_COLUMNS} FROM phones WHERE device_id = $1"))
            .bind(device_id)
            .fetch_optional(&mut self.reader().await?.db())
            .await?;
        row.as_ref().map(phone_from_row).transpose()
    }

    /// The cards issued to `device_id`, by city.
    pub async fn cards_of_device(&self, device_id: &str) -> Result<Vec<PhoneCard>, StoreError> {
        let rows = query(format!("SELECT {CARD_COLUMNS} FROM phone_cards WHERE device_id = $1 ORDER BY city LIMIT $2"))
            .bind(device_id)
            .bind(DEVICE_CARDS_LISTED_MAX)
            .fetch_all(&mut self.reader().await?.db())
            .await?;
        rows.iter().map(card_from_row).collect()
    }

    /// Records an operator key with its hash.
    pub(crate) async fn insert_operator_key(&self, key: &OperatorKey, key_sha256: &str) -> Result<(), StoreError> {
        let mut transaction = self.begin_write().await?;
        query(format!("INSERT INTO operator_keys ({KEY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)"))
            .bind(key.key_id.as_str())
            .bind(key.city.as_str())
            .bind(key.name.as_str())
            .bind(key.created_at_ms)
            .bind(key.revoked_at_ms)
            .bind(key_sha256)
            .execute(&mut transaction.db())
            .await?;
        transaction.commit().await?;
        Ok(())
    }

    /// The operator key hashing to `key_sha256`, revoked or not.
    pub(crate) async fn operator_key_by_sha256(&self, key_sha256: &str) -> Result<Option<OperatorKey>, StoreError> {
        let row = query(format!("SELECT {KEY_COLUMNS} FROM operator_keys WHERE key_sha256 = $1"))
            .bind(key_sha256)
            .fetch_optional(&mut self.reader().await?.db())
            .await?;
        let Some(row) = row else { return Ok(None) };
        let stored: String = column(&row, 5)?;
        hashes_match(&stored, key_sha256).then(|| key_from_row(&row)).transpose()
    }

    /// Every operator key (never the keys themselves), oldest first, at most
    /// [`OPERATOR_KEYS_LISTED_MAX`].
    pub async fn operator_keys(&self) -> Result<Vec<OperatorKey>, StoreError> {
        let rows = query(format!("SELECT {KEY_COLUMNS} FROM operator_keys ORDER BY created_at_ms, key_id LIMIT $1"))
            .bind(i64::from(OPERATOR_KEYS_LISTED_MAX))
            .fetch_all(&mut self.reader().await?.db())
            .await?;
        rows.iter().map(key_from_row).collect()
    }

    /// Revokes operator key `key_id` at `now_ms`; `false` if there is no such key or it was
    /// revoked before.
    pub async fn revoke_operator_key(&self, key_id: &str, now_ms: i64) -> Result<bool, StoreError> {
        let mut transaction = self.begin_write().await?;
        let updated = query("UPDATE operator_keys SET revoked_at_ms = $1 WHERE key_id = $2 AND revoked_at_ms IS NULL")
            .bind(now_ms)
            .bind(key_id)
            .execute(&mut transaction.db())
            .await?;
        transaction.commit().await?;
        Ok(updated == 1)
    }
}

fn phone_from_row(row: &Row) -> Result<RegisteredPhone, StoreError> {
    Ok(RegisteredPhone {
        phone_id: column(row, 0)?,
        phone: Phone {
            device_id: column(row, 1)?,
            se_id: column(row, 2)?,
            maker: column(row, 3)?,
            model: column(row, 4)?,
            carrier: column(row, 5)?,
        },
        registered_at_ms: column(row, 6)?,
    })
}

fn key_from_row(row: &Row) -> Result<OperatorKey, StoreError> {
    Ok(OperatorKey {
        key_id: column(row, 0)?,
        city: column(row, 1)?,
        name: column(row, 2)?,
        created_at_ms: column(row, 3)?,
        revoked_at_ms: column(row, 4)?,
    })
}
