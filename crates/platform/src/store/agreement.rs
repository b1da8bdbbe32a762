//! The ledger–clearing agreement read from the database (`crate::ledger::ClearingAgreement`
//! says what it proves): each platform card's ledger side from its liability and its closure's
//! posting, its clearing side from its stored shadow, in one read transaction. On SQLite the
//! shadows are in the back office's file (`backoffice_file`), whose snapshot is taken when the
//! transaction first reads it, after the ledger's: a load or debit fed meanwhile shows on the
//! clearing side only, where it is counted with the gates' (a transient difference of those
//! totals, not a disagreement).

use std::collections::{BTreeMap, BTreeSet};

use yitong_clearing::shadow::{CardId, Sequence, Shadow, Transaction, Verdict};

use super::group_shadows::{load_shadows, Seating};
use super::sql::query;
use super::{column, IngestError, Store};
use crate::cities::Cities;
use crate::ledger::{CardAgreement, ClearingAgreement};

/// Cards whose shadows one statement reads.
const CARDS_PER_PAGE: usize = 1_000;

impl Store {
    /// Checks, card by card, that the ledger and the back office's shadows agree on what each of
    /// the platform's cards holds and what its riders paid at gates (`cities`: the cards' issuers).
    /// The platform's own records must have been fed to the shadows first (the service feeds
    /// before answering); one not fed leaves its card undecided.
    pub async fn check_clearing_agreement(&self, cities: &Cities) -> Result<ClearingAgreement, IngestError> {
        let mut transaction = self.begin_shadow_snapshot().await?;
        let mut db = transaction.db();
        let connection = &mut db;
        let mut check = ClearingAgreement::default();

        let rows = query(
            "SELECT account, CAST(SUM(amount_fen) AS BIGINT) FROM ledger_lines \
             WHERE account LIKE 'card_liability/%' GROUP BY account",
        )
        .fetch_all(&mut *connection)
        .await?;
        let mut liabilities = BTreeMap::new();
        for row in &rows {
            let account: String = column(row, 0)?;
            let sum: i64 = column(row, 1)?;
            liabilities.insert(account.trim_start_matches("card_liability/").to_owned(), -sum);
        }
        let rows = query(
            "SELECT c.card_id, CAST(SUM(l.amount_fen) AS BIGINT) FROM card_closures AS c \
             JOIN ledger_lines AS l ON l.posting_id = 'closure/' || c.closure_id || '/closed' \
             WHERE l.account = 'fares_unsettled' GROUP BY c.card_id",
        )
        .fetch_all(&mut *connection)
        .await?;
        // The closure credits there what the card's liability held beyond what the card proved.
        let mut unsettled = BTreeMap::new();
        for row in &rows {
            unsettled.insert(column::<String>(row, 0)?, -column::<i64>(row, 1)?);
        }
        let row = query(
            "SELECT CAST(COALESCE(SUM(amount_fen), 0) AS BIGINT) FROM ledger_lines WHERE account = 'fares_unsettled'",
        )
        .fetch_one(&mut *connection)
        .await?;
        check.fares_unsettled_fen = -column::<i64>(&row, 0)?;

        // The platform's own loads and debits of each card, by tap ID, with their state.
        let rows = query(
            "SELECT card_id, tap_id, state FROM ota_loads WHERE state <> 'not_loaded' \
             UNION ALL SELECT c.card_id, d.tap_id, d.state FROM closure_debits AS d \
             JOIN card_closures AS c ON c.closure_id = d.closure_id WHERE d.state <> 'not_debited'",
        )
        .fetch_all(&mut *connection)
        .await?;
        let mut platform: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for row in &rows {
            let (card, tap, state): (String, String, String) = (column(row, 0)?, column(row, 1)?, column(row, 2)?);
            platform.entry(card).or_default().insert(tap, state);
        }

        let cards =
            query("SELECT card_id, city, state FROM phone_cards ORDER BY card_id").fetch_all(&mut *connection).await?;
        let mut parsed = Vec::with_capacity(cards.len());
        for row in &cards {
            let (card_id, city, state): (String, String, String) = (column(row, 0)?, column(row, 1)?, column(row, 2)?);
            let corrupt = |why: String| IngestError::Shadow(format!("card {card_id}: {why}"));
            let issuer_id =
                cities.get(&city).ok_or_else(|| corrupt(format!("city {city:?} is not served")))?.issuer_id();
            let mut card_serial = [0u8; 10];
            hex::decode_to_slice(&card_id, &mut card_serial).map_err(|e| corrupt(format!("not a serial: {e}")))?;
            parsed.push((card_id, state, CardId { issuer_id, card_serial }));
        }
        // The shadows read a page of cards per statement.
        for page in parsed.chunks(CARDS_PER_PAGE) {
            let ids: Vec<CardId> = page.iter().map(|(_, _, card)| *card).collect();
            let shadows = load_shadows(self.backend(), None, connection, &Seating::of(&ids)?).await?;
            for (card_id, state, card) in page {
                let shadow =
                    shadows.get(card).ok_or_else(|| IngestError::Internal(format!("card {card}: not read")))?;
                let ledger_fen =
                    liabilities.get(card_id).copied().unwrap_or(0) + unsettled.get(card_id).copied().unwrap_or(0);
                let judged = judge(card_id, state, ledger_fen, &shadow.shadow, platform.get(card_id));
                check.add(card_id, judged);
            }
        }
        transaction.commit().await?;
        Ok(check)
    }
}

/// One card's two sides (`Err`: why it is undecided), from its ledger side, its shadow and the
/// platform's own records of it (tap ID → state).
fn judge(
    card_id: &str,
    state: &str,
    ledger_fen: i64,
    shadow: &Shadow,
    records: Option<&BTreeMap<String, String>>,
) -> Result<CardAgreement, String> {
    let transactions = shadow.transactions();
    let held: BTreeSet<String> = transactions.iter().map(|t| t.tap_id.to_string()).collect();
    let mut why = Vec::new();
    if state == "closing" {
        // Its debit may be proven and fed before the closure's posting moves the liability.
        why.push("closure in progress".to_owned());
    }
    if let Some(flag) = shadow.flags().next() {
        why.push(format!("flag standing: {flag}"));
    }
    let pending = transactions.iter().filter(|t| t.verdict == Verdict::Pending).count();
    if pending > 0 {
        why.push(format!("{pending} record(s) pending"));
    }
    for (tap, state) in records.into_iter().flatten() {
        match state.as_str() {
            "in_doubt" => why.push(format!("platform record {tap} in doubt")),
            "unconfirmed" => why.push(format!("platform record {tap} handed on unconfirmed")),
            _ if !held.contains(tap) => {
                why.push(format!("platform record {tap} not fed to the back office yet (or refused there)"))
            }
            _ => {}
        }
    }
    // A card the platform issued starts both counters at 0: a first record above 1 means earlier
    // ones were not uploaded.
    for (sequence, name) in [(Sequence::Online, "load"), (Sequence::Offline, "purchase")] {
        let lowest = transactions.iter().filter(|t| t.sequence == sequence).map(|t| t.counter).min();
        if let Some(lowest) = lowest.filter(|&counter| counter > 1) {
            why.push(format!("{name} counters below {lowest} not uploaded"));
        }
    }
    if !why.is_empty() {
        return Err(why.join("; "));
    }
    let mut agreement = CardAgreement {
        card_id: card_id.to_owned(),
        state: state.to_owned(),
        ledger_fen,
        shadow_fen: shadow.balance_fen().unwrap_or(0),
        gate_debits_fen: 0,
        other_loads_fen: 0,
    };
    let platform_record = |t: &&Transaction| records.is_some_and(|r| r.contains_key(&t.tap_id.to_string()));
    for t in transactions.iter().filter(|t| t.verdict == Verdict::Charged).filter(|t| !platform_record(t)) {
        match t.sequence {
            Sequence::Online => agreement.other_loads_fen += i64::from(t.amount_fen),
            Sequence::Offline => agreement.gate_debits_fen += i64::from(t.amount_fen),
        }
    }
    Ok(agreement)
}
