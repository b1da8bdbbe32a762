//! The day's report: obligation lines, totals per operator and issuer, net positions and the
//! reconciliation figures. Serialized to JSON with serde, to CSV by [`DayReport::to_csv`].

use serde::{Serialize, Serializer};
use yitong_profile::DateTime;

use super::{BusinessDay, CutOver, LineKind, Participant};

/// A number of records and their amount.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    /// How many records (or entries).
    pub records: u64,
    /// Their amount, fen.
    pub amount_fen: i64,
}

impl Tally {
    /// Counts one more of `amount_fen`. Cannot overflow within
    /// [`INPUTS_MAX`](super::INPUTS_MAX) inputs.
    pub(super) fn add(&mut self, amount_fen: u32) {
        self.records += 1;
        self.amount_fen += i64::from(amount_fen);
    }

    /// Adds another tally.
    pub(super) fn merge(&mut self, other: &Tally) {
        self.records += other.records;
        self.amount_fen += other.amount_fen;
    }
}

/// A participant with its name from the table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Party {
    /// Its ID (`issuer:…`, `metro:…`, `bus:…`).
    pub id: Participant,
    /// Its name.
    pub name: String,
}

/// Money one participant owes another for the day: every cleared record is on exactly one line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ObligationLine {
    /// Purchase, service desk or load.
    pub kind: LineKind,
    /// Who owes.
    pub payer: Party,
    /// Who is owed.
    pub payee: Party,
    /// How many records (taps of 0 fen included).
    pub records: u64,
    /// Their amount, fen.
    pub amount_fen: i64,
}

/// What an operator's gates or validators charged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OperatorTotals {
    /// The operator.
    pub operator: Party,
    /// Purchases of more than 0 fen.
    pub purchases: Tally,
    /// Taps of 0 fen (metro entries): counted, no money.
    pub zero_fen_taps: u64,
}

/// An issuer's day: its cards' debits and loads, and the platform's figures for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IssuerTotals {
    /// The issuer.
    pub issuer: Party,
    /// Debits of more than 0 fen on its cards, anywhere (fares and service-desk debits).
    pub card_debits: Tally,
    /// Taps of 0 fen of its cards.
    pub card_zero_fen_taps: u64,
    /// Loads seen on its cards, at any top-up terminal.
    pub card_loads: Tally,
    /// Loads seen on cards at the platform's over-the-air host of its city
    /// (`city · FFFF · 0002`): what the platform's ledger should show as paid loads.
    pub host_loads: Tally,
    /// Paid loads in the platform's ledger.
    pub platform_loads: Tally,
    /// Fees in the platform's ledger.
    pub platform_fees: Tally,
    /// Refunds in the platform's ledger.
    pub platform_refunds: Tally,
    /// `platform_loads − host_loads`, fen: 0 when the ledger and the cards agree; otherwise a
    /// load on one side of the cut-over and not yet on the other, a load still pending, or a
    /// discrepancy to look into.
    pub platform_load_difference_fen: i64,
}

/// A participant's net position: what it is owed less what it owes. The nets sum to zero.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Position {
    /// The participant.
    pub participant: Party,
    /// Sum of the lines it is the payee of, fen.
    pub receivable_fen: i64,
    /// Sum of the lines it is the payer of, fen.
    pub payable_fen: i64,
    /// `receivable − payable`, fen: positive is owed to it.
    pub net_fen: i64,
}

/// Inputs given and left out because they fall outside the day.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct OutsideDay {
    /// Cleared records of other days.
    pub cleared_records: u64,
    /// Pending records of other days.
    pub pending_records: u64,
    /// Platform entries of other days.
    pub platform_entries: u64,
}

/// The figures that prove the report adds up, each side computed on its own.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Reconciliation {
    /// Cleared debits (purchases and service-desk debits, 0 fen included), summed from the
    /// records: what the shadow balances debited that day.
    pub debits_cleared: Tally,
    /// The same, summed from the `purchase` and `service_desk` lines. Equals `debits_cleared`.
    pub debit_lines: Tally,
    /// Cleared loads, summed from the records: the credits seen on cards.
    pub loads_cleared: Tally,
    /// The same, summed from the `load` lines. Equals `loads_cleared`.
    pub load_lines: Tally,
    /// Loads seen on cards at the platform's over-the-air hosts (all issuers).
    pub host_loads: Tally,
    /// Paid loads in the platform's ledger (all issuers).
    pub platform_loads: Tally,
    /// `platform_loads − host_loads`, fen (shown, never hidden; see [`IssuerTotals`]).
    pub platform_load_difference_fen: i64,
    /// Fees in the platform's ledger (all issuers).
    pub platform_fees: Tally,
    /// Refunds in the platform's ledger (all issuers).
    pub platform_refunds: Tally,
    /// Sum of the net positions, fen: always 0.
    pub net_positions_sum_fen: i64,
    /// Debits of the day not decided yet (pending): not cleared, not on any line.
    pub pending_debits: Tally,
    /// Loads of the day not decided yet (pending): not cleared, not on any line.
    pub pending_loads: Tally,
    /// What was given for other days and left out.
    pub outside_day: OutsideDay,
}

/// One business day's clearing and settlement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DayReport {
    /// The business day, `YYYY-MM-DD`.
    pub day: BusinessDay,
    /// Its cut-over, `HH:MM`.
    pub cut_over: CutOver,
    /// Its first second, `YYYY-MM-DD HH:MM:SS` local.
    #[serde(serialize_with = "as_text")]
    pub from: DateTime,
    /// The first second after it.
    #[serde(serialize_with = "as_text")]
    pub until: DateTime,
    /// Obligation lines by kind, payer, payee.
    pub obligations: Vec<ObligationLine>,
    /// Operators' totals, by operator.
    pub operators: Vec<OperatorTotals>,
    /// Issuers' totals, by issuer ID.
    pub issuers: Vec<IssuerTotals>,
    /// Net positions of every participant on a line.
    pub positions: Vec<Position>,
    /// The reconciliation.
    pub reconciliation: Reconciliation,
}

fn as_text<S: Serializer>(at: &DateTime, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(at)
}
