//! The closure's steps: each takes the card's answer to the last command and stores the next.

use yitong_issuer::{TerminalSite, SERVICE_DESK_OVER_THE_AIR};
use yitong_profile::apdu::{self, transaction_type, PurchaseInit};
use yitong_profile::files::{LogRecord, LOG_RECORDS_MAX, LOG_RECORD_LEN};
use yitong_profile::{DateTime, StatusWord};

use crate::card_answer::ok_data;
use yitong_record::{verify_tac, RecordStatus, TapKind, TapRecord};
use yitong_terminal::{Mac1Request, SamError, SecurityModule};

use super::{
    Closure, ClosureDebit, ClosureError, ClosureService, ClosureState, ClosureStep, DebitState, Purpose, Stage,
};
use crate::cities::City;
use crate::issuance::PhoneCard;
use crate::ledger::{Account, CardId, Fen, Line, Posting, PostingId, Side};
use crate::payments::{PaymentProvider, PaymentService};
use crate::store::Db;
use crate::store::{self, closures as db};

/// Debits one closure hands out at most (each empties the card; another round only follows a
/// balance that changed between GET BALANCE and INITIALIZE).
pub const ROUNDS_MAX: u32 = 4;

/// What a step decided, saved with the closure in one transaction.
enum Effect {
    /// Nothing beyond the new stage.
    None,
    /// A debit recorded in doubt (MAC1 leaves after the commit).
    NewDebit(ClosureDebit),
    /// The debit in doubt settled.
    Settle(ClosureDebit, DebitState, TapRecord),
    /// The card is blocked for good.
    Close,
}

impl ClosureService {
    /// Starts closing `card` for `purpose` (the phone's own card: the caller checked), or resumes
    /// its closure: the first command for the phone. A closed closure answers its outcome again.
    pub async fn start<P: PaymentProvider>(
        &self,
        payments: &PaymentService<P>,
        card: &CardId,
        purpose: Purpose,
        now_ms: i64,
    ) -> Result<ClosureStep, ClosureError> {
        let store = payments.store();
        let mut transaction = store.begin_write().await?;
        let phone_card = store::card_by_id_in(&mut transaction.db(), card).await?;
        if phone_card.is_none() {
            return Err(ClosureError::UnknownCard(card.clone()));
        }
        if db::move_card_in(&mut transaction.db(), card, "active", "closing").await? {
            if store::doubt_of_card_in(&mut transaction.db(), card).await?.is_some() {
                transaction.rollback().await?;
                return Err(ClosureError::LoadInDoubt(card.clone()));
            }
            let closure = Closure {
                closure_id: format!("C{card}"),
                card_id: card.clone(),
                purpose,
                state: ClosureState::Open,
                stage: Stage::Balance,
                moved: Fen::ZERO,
                unconfirmed: Fen::ZERO,
                rounds: 0,
                created_at_ms: now_ms,
                updated_at_ms: now_ms,
                version: 0,
            };
            if db::insert_closure_in(&mut transaction.db(), &closure).await? {
                transaction.commit().await?;
                return self.step(payments, &closure, true).await;
            }
            transaction.rollback().await?;
            return Err(ClosureError::Contended(closure.closure_id));
        }
        let closure = db::closure_of_card_in(&mut transaction.db(), card).await?;
        transaction.rollback().await?;
        let mut closure = closure.ok_or_else(|| ClosureError::UnknownCard(card.clone()))?;
        if closure.purpose != purpose {
            return Err(ClosureError::PurposeMismatch { card: card.clone(), purpose: closure.purpose });
        }
        if closure.state == ClosureState::Closed {
            // A deletion's refunds the provider had not finished are asked again.
            if closure.purpose == Purpose::Delete {
                self.push_refunds(payments, &closure, now_ms).await?;
            }
            return self.step(payments, &closure, false).await;
        }
        // Resume: a debit in doubt is asked about first; a block is asked again (blocking a
        // blocked card answers 9000 and writes nothing); otherwise from the balance.
        let mut connection = store.reader().await?;
        let doubt = db::debit_in_doubt_in(&mut connection.db(), &closure.closure_id).await?;
        drop(connection);
        let stage = match (&doubt, &closure.stage) {
            (Some(_), _) => Stage::Prove,
            (None, Stage::Challenge | Stage::Block { .. }) => Stage::Challenge,
            (None, _) => Stage::Balance,
        };
        closure.stage = stage;
        closure.updated_at_ms = now_ms;
        let mut transaction = store.begin_write().await?;
        if !db::save_closure_in(&mut transaction.db(), &closure).await? {
            transaction.rollback().await?;
            return Err(ClosureError::Contended(closure.closure_id));
        }
        transaction.commit().await?;
        closure.version += 1;
        self.step(payments, &closure, false).await
    }

    /// Takes the card's whole `answer` (data and status word) to the last command of closure
    /// `id`, at the city's local time `at`, and hands out the next command.
    pub async fn answer<P: PaymentProvider>(
        &self,
        payments: &PaymentService<P>,
        id: &str,
        answer: &[u8],
        at: DateTime,
        now_ms: i64,
    ) -> Result<ClosureStep, ClosureError> {
        let store = payments.store();
        let mut connection = store.reader().await?;
        let closure = db::closure_in(&mut connection.db(), id)
            .await?
            .ok_or_else(|| ClosureError::UnknownClosure(id.to_owned()))?;
        let card = store::card_by_id_in(&mut connection.db(), &closure.card_id)
            .await?
            .ok_or_else(|| ClosureError::UnknownCard(closure.card_id.clone()))?;
        let doubt = db::debit_in_doubt_in(&mut connection.db(), id).await?;
        drop(connection);
        if closure.state == ClosureState::Closed {
            return self.step(payments, &closure, false).await;
        }
        let city = self.city(&card)?;
        let mut next = closure.clone();
        next.updated_at_ms = now_ms;
        let effect = match &closure.stage {
            Stage::Balance => {
                let balance = balance_of(answer)?;
                next.stage = match (&doubt, balance) {
                    // A debit in doubt needs the counter of a fresh INITIALIZE, even at zero.
                    (Some(_), _) => Stage::Initialize { amount_fen: u32::try_from(balance).unwrap_or(0) },
                    (None, b) if b <= 0 => Stage::Challenge,
                    (None, _) if closure.rounds >= ROUNDS_MAX => return Err(ClosureError::TooManyRounds(card.card_id)),
                    (None, b) => Stage::Initialize { amount_fen: u32::try_from(b).unwrap_or(0) },
                };
                Effect::None
            }
            Stage::Initialize { amount_fen } => {
                let init = initialize_of(answer)?;
                let mut effects = Vec::new();
                if let Some(doubt) = &doubt {
                    // The new INITIALIZE voided the old session: an unchanged counter proves it
                    // never committed; a moved one proves nothing about our debit.
                    let (state, status) = if init.offline_counter == doubt.counter_before {
                        (DebitState::NotDebited, doubt.record.status)
                    } else {
                        let amount = Fen::new(i64::from(doubt.record.amount_fen)).unwrap_or(Fen::ZERO);
                        next.unconfirmed = next.unconfirmed.checked_add(amount).ok_or(ClosureError::BadAnswer {
                            command: "INITIALIZE FOR PURCHASE",
                            why: "amounts overflow".to_owned(),
                        })?;
                        (DebitState::Unconfirmed, RecordStatus::Unconfirmed)
                    };
                    let record = TapRecord { status, ..doubt.record.clone() };
                    effects.push(Effect::Settle(doubt.clone(), state, record));
                }
                if i64::from(init.balance_fen) != i64::from(*amount_fen) || *amount_fen == 0 {
                    // Zero: nothing to debit. Changed since GET BALANCE: read it again.
                    next.stage = if init.balance_fen <= 0 { Stage::Challenge } else { Stage::Balance };
                } else {
                    let (debit, command) =
                        self.debit(payments, &card, city, &closure, &init, *amount_fen, at, now_ms).await?;
                    next.stage = Stage::Debit { command: hex::encode_upper(&command) };
                    next.rounds += 1;
                    effects.push(Effect::NewDebit(debit));
                }
                return self.save(payments, next, effects).await;
            }
            Stage::Debit { .. } => {
                let doubt = doubt.ok_or_else(|| ClosureError::Contended(id.to_owned()))?;
                let data = ok_data(answer, "DEBIT FOR PURCHASE")?;
                let proof = <[u8; 8]>::try_from(data).map_err(|_| ClosureError::BadAnswer {
                    command: "DEBIT FOR PURCHASE",
                    why: format!("{} data bytes, expected TAC and MAC2", data.len()),
                })?;
                let (tac, mac2) = split4(proof);
                let record = self.proven(&doubt, tac, mac2, RecordStatus::Confirmed)?;
                next.moved = add(next.moved, &record)?;
                next.stage = Stage::Balance;
                Effect::Settle(doubt, DebitState::Confirmed, record)
            }
            Stage::Prove => {
                let Some(doubt) = doubt else {
                    next.stage = Stage::Balance;
                    return self.save(payments, next, vec![]).await;
                };
                let proven = StatusWord::split(answer)
                    .filter(|(_, sw)| *sw == StatusWord::OK)
                    .and_then(|(data, _)| <[u8; 8]>::try_from(data).ok())
                    .and_then(|proof| {
                        let (mac2, tac) = split4(proof);
                        self.proven(&doubt, tac, mac2, RecordStatus::Recovered).ok()
                    });
                match proven {
                    Some(record) => {
                        next.moved = add(next.moved, &record)?;
                        next.stage = Stage::Balance;
                        Effect::Settle(doubt, DebitState::Recovered, record)
                    }
                    None => {
                        next.stage = Stage::Log { record: 1 };
                        Effect::None
                    }
                }
            }
            Stage::Log { record: number } => {
                let Some(doubt) = doubt else {
                    next.stage = Stage::Balance;
                    return self.save(payments, next, vec![]).await;
                };
                let entry = StatusWord::split(answer)
                    .filter(|(_, sw)| *sw == StatusWord::OK)
                    .and_then(|(data, _)| LogRecord::decode(data).ok());
                match entry {
                    Some(entry) if log_shows(&doubt.record, &entry) => {
                        let record = TapRecord { status: RecordStatus::Recovered, ..doubt.record.clone() };
                        next.moved = add(next.moved, &record)?;
                        next.stage = Stage::Balance;
                        Effect::Settle(doubt, DebitState::Recovered, record)
                    }
                    Some(_) if usize::from(*number) < LOG_RECORDS_MAX => {
                        next.stage = Stage::Log { record: number + 1 };
                        Effect::None
                    }
                    // The log ends (6A83) or holds nothing of ours: the counter decides.
                    _ => {
                        next.stage = Stage::Balance;
                        Effect::None
                    }
                }
            }
            Stage::Challenge => {
                let data = ok_data(answer, "GET CHALLENGE")?;
                let challenge = <[u8; 4]>::try_from(data).map_err(|_| ClosureError::BadAnswer {
                    command: "GET CHALLENGE",
                    why: format!("{} data bytes, expected 4", data.len()),
                })?;
                let serial = card.serial().map_err(|_| ClosureError::UnknownCard(card.card_id.clone()))?;
                let psam = self.keys.service_desk_psam(terminal_id(city), 1);
                let mac = psam
                    .application_block_mac_p2(city.issuer_id(), serial.asn8(), Some(card.key_version), challenge, true)
                    .map_err(ClosureError::Keys)?;
                next.stage = Stage::Block { command: hex::encode_upper(apdu::application_block(true, mac)) };
                Effect::None
            }
            Stage::Block { .. } => {
                ok_data(answer, "APPLICATION BLOCK")?;
                next.stage = Stage::Done;
                next.state = ClosureState::Closed;
                Effect::Close
            }
            Stage::Done => Effect::None,
        };
        self.save(payments, next, vec![effect]).await
    }

    /// Saves `next` (compare-and-swap on its version) with `effects` in one transaction, then
    /// answers its step.
    async fn save<P: PaymentProvider>(
        &self,
        payments: &PaymentService<P>,
        next: Closure,
        effects: Vec<Effect>,
    ) -> Result<ClosureStep, ClosureError> {
        let store = payments.store();
        let mut transaction = store.begin_write().await?;
        if !db::save_closure_in(&mut transaction.db(), &next).await? {
            transaction.rollback().await?;
            return Err(ClosureError::Contended(next.closure_id));
        }
        let mut closing = false;
        for effect in effects {
            match effect {
                Effect::None => {}
                Effect::NewDebit(debit) => db::insert_debit_in(&mut transaction.db(), &debit).await?,
                Effect::Settle(debit, to, record) => {
                    if !db::settle_debit_in(&mut transaction.db(), &debit, to, &record, next.updated_at_ms).await? {
                        transaction.rollback().await?;
                        return Err(ClosureError::Contended(next.closure_id));
                    }
                }
                Effect::Close => closing = true,
            }
        }
        if closing {
            self.close_in(payments, &mut transaction.db(), &next).await?;
        }
        transaction.commit().await?;
        let saved = Closure { version: next.version + 1, ..next };
        if closing && saved.purpose == Purpose::Delete {
            self.push_refunds(payments, &saved, saved.updated_at_ms).await?;
        }
        self.step(payments, &saved, false).await
    }

    /// In the closing transaction: the card `closed`, its believed balance 0, the posting, and
    /// the transfer or the balance refund.
    async fn close_in<P: PaymentProvider>(
        &self,
        payments: &PaymentService<P>,
        connection: &mut Db<'_>,
        closure: &Closure,
    ) -> Result<(), ClosureError> {
        let now_ms = closure.updated_at_ms;
        let card = store::card_by_id_in(connection, &closure.card_id)
            .await?
            .ok_or_else(|| ClosureError::UnknownCard(closure.card_id.clone()))?;
        db::move_card_in(connection, &card.card_id, "closing", "closed").await?;
        let liability = Account::CardLiability(card.card_id.clone());
        // Credit balance counted positive: what the platform believed the card held.
        let believed = -store::balance_in(connection, &liability).await?;
        let moved = closure.moved.get();
        let to = match closure.purpose {
            Purpose::Transfer => Account::TransfersPayable,
            Purpose::Delete => Account::RefundsPayable,
        };
        let mut lines = Vec::new();
        let mut line = |account: Account, signed_fen: i64| {
            if let Some(amount) = Fen::new(signed_fen.abs()).filter(|a| *a != Fen::ZERO) {
                let side = if signed_fen > 0 { Side::Debit } else { Side::Credit };
                lines.push(Line { account, side, amount });
            }
        };
        line(liability, believed);
        line(to, -moved);
        line(Account::FaresUnsettled, moved - believed);
        if !lines.is_empty() {
            let id = PostingId::parse(&format!("closure/{}/closed", closure.closure_id))?;
            let posting = Posting::new(id, "card emptied and blocked: its proven balance moved", now_ms, lines)?;
            store::post_in(connection, &posting).await?;
        }
        store::record_card_balance_in(connection, &card.card_id, Fen::ZERO, now_ms).await?;
        match closure.purpose {
            Purpose::Transfer => {
                let transfer = super::Transfer {
                    // Never shown: the outcome hands the old phone a fresh code (see `step`).
                    code_sha256: super::code_sha256(&self.transfer_code()),
                    closure_id: closure.closure_id.clone(),
                    from_card_id: card.card_id.clone(),
                    from_device_id: card.device_id.clone(),
                    city: card.city.clone(),
                    amount: closure.moved,
                    to_device_id: None,
                    to_card_id: None,
                    load_order_id: None,
                    created_at_ms: now_ms,
                    claimed_at_ms: None,
                };
                db::insert_transfer_in(connection, &transfer).await?;
            }
            Purpose::Delete => self.open_balance_refund_in(payments, connection, closure).await?,
        }
        Ok(())
    }

    /// Checks MAC1's session: computes MAC1 for a debit of `amount_fen` (the whole balance) with
    /// a transaction number from the database, and records the debit in doubt. Returns the
    /// DEBIT command (sent only after the commit).
    #[allow(clippy::too_many_arguments)]
    async fn debit<P: PaymentProvider>(
        &self,
        payments: &PaymentService<P>,
        card: &PhoneCard,
        city: &City,
        closure: &Closure,
        init: &PurchaseInit,
        amount_fen: u32,
        at: DateTime,
        now_ms: i64,
    ) -> Result<(ClosureDebit, Vec<u8>), ClosureError> {
        let serial = card.serial().map_err(|_| ClosureError::UnknownCard(card.card_id.clone()))?;
        let terminal_id = terminal_id(city);
        let mut transaction = payments.store().begin_write().await?;
        let number = store::next_transaction_number_in(&mut transaction.db(), terminal_id).await?;
        transaction.commit().await?;
        let mut psam = self.keys.service_desk_psam(terminal_id, number);
        let request = Mac1Request {
            card_random: init.card_random,
            offline_counter: init.offline_counter,
            amount_fen,
            transaction_type: transaction_type::EP_PURCHASE,
            at,
            key_version: init.key_version,
            algorithm_id: init.algorithm_id,
            asn8: serial.asn8(),
            issuer_id: city.issuer_id(),
        };
        let (number, mac1) = psam.purchase_mac1(&request).map_err(ClosureError::Keys)?;
        let balance_before = i64::from(init.balance_fen);
        let record = TapRecord {
            status: RecordStatus::Confirmed,
            kind: TapKind::Single,
            transaction_type: transaction_type::EP_PURCHASE,
            card_serial: serial.0,
            issuer_id: city.issuer_id(),
            counter: init.offline_counter.wrapping_add(1),
            amount_fen,
            balance_before_fen: balance_before,
            balance_after_fen: balance_before - i64::from(amount_fen),
            terminal_id,
            terminal_transaction_number: number,
            at,
            city: city.name().to_owned(),
            city_code: city.city_code(),
            station: String::new(),
            line: 0,
            station_code: 0,
            card_random: init.card_random,
            key_version: init.key_version,
            algorithm_id: init.algorithm_id,
            mac2: None,
            tac: None,
        };
        let debit = ClosureDebit {
            closure_id: closure.closure_id.clone(),
            state: DebitState::InDoubt,
            counter_before: init.offline_counter,
            record,
            created_at_ms: now_ms,
            updated_at_ms: now_ms,
        };
        Ok((debit, apdu::debit_for_purchase(number, at.date_bcd(), at.time_bcd(), mac1)))
    }

    /// The debit's record with the card's `tac` and `mac2`, if both verify.
    fn proven(
        &self,
        doubt: &ClosureDebit,
        tac: [u8; 4],
        mac2: [u8; 4],
        status: RecordStatus,
    ) -> Result<TapRecord, ClosureError> {
        let mut record = doubt.record.clone();
        record.tac = Some(tac);
        record.mac2 = Some(mac2);
        record.status = status;
        let mut psam = self.keys.service_desk_psam(record.terminal_id, record.terminal_transaction_number);
        match psam.check_proof_mac2(&record, mac2) {
            Ok(()) => {}
            Err(SamError::MacMismatch) => return Err(ClosureError::Mac2Invalid),
            Err(error) => return Err(ClosureError::Keys(error)),
        }
        verify_tac(&record, &self.tac).map_err(ClosureError::Tac)?;
        Ok(record)
    }

    /// The step to hand the phone for `closure` as stored.
    async fn step<P: PaymentProvider>(
        &self,
        payments: &PaymentService<P>,
        closure: &Closure,
        started: bool,
    ) -> Result<ClosureStep, ClosureError> {
        let store = payments.store();
        let mut connection = store.reader().await?;
        let command = match &closure.stage {
            Stage::Balance => Some(apdu::get_balance()),
            Stage::Initialize { amount_fen } => {
                let card = store::card_by_id_in(&mut connection.db(), &closure.card_id)
                    .await?
                    .ok_or_else(|| ClosureError::UnknownCard(closure.card_id.clone()))?;
                Some(apdu::initialize_for_purchase(false, *amount_fen, terminal_id(self.city(&card)?)))
            }
            Stage::Debit { command } | Stage::Block { command } => Some(hex::decode(command).map_err(|_| {
                ClosureError::Store(store::StoreError::Corrupt {
                    table: "card_closures",
                    key: closure.closure_id.clone(),
                    why: "stored command is not hex".to_owned(),
                })
            })?),
            Stage::Prove => {
                let doubt = db::debit_in_doubt_in(&mut connection.db(), &closure.closure_id).await?;
                match doubt {
                    Some(doubt) => {
                        Some(apdu::get_transaction_prove(transaction_type::EP_PURCHASE, doubt.record.counter))
                    }
                    None => Some(apdu::get_balance()),
                }
            }
            Stage::Log { record } => Some(apdu::read_record(apdu::SFI_LOG, *record, LOG_RECORD_LEN as u8)),
            Stage::Challenge => Some(apdu::get_challenge()),
            Stage::Done => None,
        };
        let (transfer_code, refund_order, fee_refund_order) = if closure.state == ClosureState::Closed {
            match closure.purpose {
                Purpose::Transfer => {
                    // Only the code's hash is kept: each time the old phone asks for the outcome it
                    // gets a fresh code, and the earlier ones stop working. Once a phone claimed
                    // the transfer there is none to give.
                    drop(connection);
                    let code = self.transfer_code();
                    let mut transaction = store.begin_write().await?;
                    let replaced = db::replace_transfer_code_in(
                        &mut transaction.db(),
                        &closure.closure_id,
                        &super::code_sha256(&code),
                    )
                    .await?;
                    transaction.commit().await?;
                    (replaced.then_some(code), None, None)
                }
                Purpose::Delete => {
                    drop(connection);
                    let (refund, fee) = self.refund_orders(payments, closure).await?;
                    (None, refund, fee)
                }
            }
        } else {
            (None, None, None)
        };
        Ok(ClosureStep {
            closure_id: closure.closure_id.clone(),
            purpose: closure.purpose,
            state: closure.state,
            command,
            moved: closure.moved,
            unconfirmed: closure.unconfirmed,
            transfer_code,
            refund_order,
            fee_refund_order,
            started,
        })
    }

    pub(super) fn city(&self, card: &PhoneCard) -> Result<&City, ClosureError> {
        self.issuance.cities().get(&card.city).ok_or_else(|| ClosureError::UnknownCard(card.card_id.clone()))
    }
}

/// Our terminal in `city`: `city · FFFF · 0003`, the service desk over the air.
pub fn terminal_id(city: &City) -> [u8; 6] {
    TerminalSite::TopUp { number: SERVICE_DESK_OVER_THE_AIR }
        .terminal_id(city.city_code())
        .expect("a city's code is BCD and top-up sites are always valid")
}

/// Whether an EF18 entry is our debit: purchase type, counter, terminal, amount, date and time.
fn log_shows(ours: &TapRecord, entry: &LogRecord) -> bool {
    entry.transaction_type == transaction_type::EP_PURCHASE
        && entry.counter == ours.counter
        && entry.terminal_id == ours.terminal_id
        && entry.amount_fen == ours.amount_fen
        && entry.date == ours.at.date_bcd()
        && entry.time == ours.at.time_bcd()
}

fn add(moved: Fen, record: &TapRecord) -> Result<Fen, ClosureError> {
    Fen::new(i64::from(record.amount_fen))
        .and_then(|amount| moved.checked_add(amount))
        .ok_or(ClosureError::BadAnswer { command: "DEBIT FOR PURCHASE", why: "amounts overflow".to_owned() })
}

fn split4(bytes: [u8; 8]) -> ([u8; 4], [u8; 4]) {
    let [a, b, c, d, e, f, g, h] = bytes;
    ([a, b, c, d], [e, f, g, h])
}

fn balance_of(answer: &[u8]) -> Result<i64, ClosureError> {
    let data = ok_data(answer, "GET BALANCE")?;
    let bytes = <[u8; 4]>::try_from(data).map_err(|_| ClosureError::BadAnswer {
        command: "GET BALANCE",
        why: format!("{} data bytes, expected 4", data.len()),
    })?;
    Ok(i64::from(i32::from_be_bytes(bytes)))
}

fn initialize_of(answer: &[u8]) -> Result<PurchaseInit, ClosureError> {
    let data = ok_data(answer, "INITIALIZE FOR PURCHASE")?;
    PurchaseInit::decode(data).map_err(|_| ClosureError::BadAnswer {
        command: "INITIALIZE FOR PURCHASE",
        why: format!("{} data bytes, expected 15", data.len()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_answers_are_parsed_not_indexed() {
        assert!(matches!(balance_of(&[0x90]), Err(ClosureError::BadAnswer { .. })));
        assert!(matches!(balance_of(&[0, 0, 0x90, 0x00]), Err(ClosureError::BadAnswer { .. })));
        assert_eq!(balance_of(&[0, 0, 1, 0, 0x90, 0x00]).unwrap(), 256);
        assert!(matches!(initialize_of(&[0x62, 0x83]), Err(ClosureError::BadAnswer { .. })));
        assert!(matches!(initialize_of(&[0; 16]), Err(ClosureError::BadAnswer { .. })));
    }

    #[test]
    fn stages_read_back() {
        for stage in [Stage::Balance, Stage::Initialize { amount_fen: 5 }, Stage::Log { record: 3 }, Stage::Done] {
            let text = serde_json::to_string(&stage).unwrap();
            assert_eq!(serde_json::from_str::<Stage>(&text).unwrap(), stage);
        }
    }
}
