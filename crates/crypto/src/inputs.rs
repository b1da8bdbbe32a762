//! The MAC and TAC inputs of the profile, field by field, each field big-endian.
//!
//! Dates are 4-byte BCD `YYYYMMDD`, times 3-byte BCD `hhmmss`, terminal IDs 6 bytes. Balances are
//! the 4 bytes the card reports (two's complement when the overdraft is in use).

use crate::{mac, Mac4, SessionKey};

/// The fields every load and purchase MAC shares after the amount.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transaction {
    /// Amount in fen.
    pub amount_fen: u32,
    /// Transaction type as logged in EF18 (`02` EP load, `06` EP purchase, `09` composite).
    pub transaction_type: u8,
    /// The terminal's 6-byte ID.
    pub terminal_id: [u8; 6],
    /// BCD `YYYYMMDD`.
    pub date: [u8; 4],
    /// BCD `hhmmss`.
    pub time: [u8; 3],
}

struct Input {
    buf: [u8; 32],
    len: usize,
}

impl Input {
    fn new() -> Self {
        Input { buf: [0; 32], len: 0 }
    }
    fn put(mut self, bytes: &[u8]) -> Self {
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
        self
    }
    fn mac(&self, key: &SessionKey) -> Mac4 {
        mac(key, &self.buf[..self.len])
    }
}

/// Load MAC1 (card → terminal): balance before ‖ amount ‖ type ‖ terminal ID.
pub fn load_mac1(key: &SessionKey, balance_before: u32, t: &Transaction) -> Mac4 {
    Input::new()
        .put(&balance_before.to_be_bytes())
        .put(&t.amount_fen.to_be_bytes())
        .put(&[t.transaction_type])
        .put(&t.terminal_id)
        .mac(key)
}

/// Load MAC2 (terminal → card): amount ‖ type ‖ terminal ID ‖ date ‖ time.
pub fn load_mac2(key: &SessionKey, t: &Transaction) -> Mac4 {
    common(t).mac(key)
}

/// Load TAC: balance after ‖ online counter (as INITIALIZE FOR LOAD returned it) ‖ amount ‖ type ‖
/// terminal ID ‖ date ‖ time, under the TAC key.
pub fn load_tac(tac_key: &SessionKey, balance_after: u32, online_counter: u16, t: &Transaction) -> Mac4 {
    Input::new()
        .put(&balance_after.to_be_bytes())
        .put(&online_counter.to_be_bytes())
        .put(&t.amount_fen.to_be_bytes())
        .put(&[t.transaction_type])
        .put(&t.terminal_id)
        .put(&t.date)
        .put(&t.time)
        .mac(tac_key)
}

/// Purchase MAC1 (terminal → card): amount ‖ type ‖ terminal ID ‖ date ‖ time.
pub fn purchase_mac1(key: &SessionKey, t: &Transaction) -> Mac4 {
    common(t).mac(key)
}

/// Purchase MAC2 (card → terminal): amount.
pub fn purchase_mac2(key: &SessionKey, amount_fen: u32) -> Mac4 {
    Input::new().put(&amount_fen.to_be_bytes()).mac(key)
}

/// Purchase TAC: amount ‖ type ‖ terminal ID ‖ terminal transaction number ‖ date ‖ time, under the
/// TAC key.
pub fn purchase_tac(tac_key: &SessionKey, terminal_transaction_number: u32, t: &Transaction) -> Mac4 {
    Input::new()
        .put(&t.amount_fen.to_be_bytes())
        .put(&[t.transaction_type])
        .put(&t.terminal_id)
        .put(&terminal_transaction_number.to_be_bytes())
        .put(&t.date)
        .put(&t.time)
        .mac(tac_key)
}

fn common(t: &Transaction) -> Input {
    Input::new()
        .put(&t.amount_fen.to_be_bytes())
        .put(&[t.transaction_type])
        .put(&t.terminal_id)
        .put(&t.date)
        .put(&t.time)
}
