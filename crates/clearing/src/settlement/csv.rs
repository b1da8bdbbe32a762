//! The report as one CSV: a row per figure, the same nine columns on every row (see the module
//! documentation of [`settlement`](super) for the columns, sections and items).

use super::report::{DayReport, Party, Tally};

/// The header row.
pub const CSV_HEADER: &str =
    "day,section,item,participant,participant_name,counterparty,counterparty_name,records,amount_fen";

/// One row before it is written.
struct Row<'a> {
    section: &'static str,
    item: &'static str,
    participant: Option<&'a Party>,
    counterparty: Option<&'a Party>,
    records: Option<u64>,
    amount_fen: Option<i64>,
}

impl<'a> Row<'a> {
    fn tally(section: &'static str, item: &'static str, participant: Option<&'a Party>, tally: &Tally) -> Self {
        Row {
            section,
            item,
            participant,
            counterparty: None,
            records: Some(tally.records),
            amount_fen: Some(tally.amount_fen),
        }
    }

    fn count(section: &'static str, item: &'static str, participant: Option<&'a Party>, records: u64) -> Self {
        Row { section, item, participant, counterparty: None, records: Some(records), amount_fen: None }
    }

    fn amount(section: &'static str, item: &'static str, participant: Option<&'a Party>, amount_fen: i64) -> Self {
        Row { section, item, participant, counterparty: None, records: None, amount_fen: Some(amount_fen) }
    }
}

impl DayReport {
    /// The report as CSV: [`CSV_HEADER`], then the rows of the sections `obligation`,
    /// `operator`, `issuer`, `position` and `reconciliation`, in that order; lines end in `\n`.
    pub fn to_csv(&self) -> String {
        let mut text = String::new();
        text.push_str(CSV_HEADER);
        text.push('\n');
        let day = self.day.to_string();
        for row in self.rows() {
            let party_id = |p: Option<&Party>| p.map(|p| p.id.to_string()).unwrap_or_default();
            let party_name = |p: Option<&Party>| p.map(|p| p.name.clone()).unwrap_or_default();
            let cells = [
                day.clone(),
                row.section.to_owned(),
                row.item.to_owned(),
                party_id(row.participant),
                party_name(row.participant),
                party_id(row.counterparty),
                party_name(row.counterparty),
                row.records.map(|n| n.to_string()).unwrap_or_default(),
                row.amount_fen.map(|n| n.to_string()).unwrap_or_default(),
            ];
            for (i, cell) in cells.iter().enumerate() {
                if i > 0 {
                    text.push(',');
                }
                push_cell(&mut text, cell);
            }
            text.push('\n');
        }
        text
    }

    fn rows(&self) -> Vec<Row<'_>> {
        const OBLIGATION: &str = "obligation";
        const OPERATOR: &str = "operator";
        const ISSUER: &str = "issuer";
        const POSITION: &str = "position";
        const RECONCILIATION: &str = "reconciliation";
        let mut rows = Vec::new();
        for line in &self.obligations {
            rows.push(Row {
                section: OBLIGATION,
                item: line.kind.as_str(),
                participant: Some(&line.payer),
                counterparty: Some(&line.payee),
                records: Some(line.records),
                amount_fen: Some(line.amount_fen),
            });
        }
        for operator in &self.operators {
            let who = Some(&operator.operator);
            rows.push(Row::tally(OPERATOR, "purchases", who, &operator.purchases));
            rows.push(Row::tally(
                OPERATOR,
                "zero_fen_taps",
                who,
                &Tally { records: operator.zero_fen_taps, amount_fen: 0 },
            ));
        }
        for issuer in &self.issuers {
            let who = Some(&issuer.issuer);
            rows.push(Row::tally(ISSUER, "card_debits", who, &issuer.card_debits));
            rows.push(Row::tally(
                ISSUER,
                "card_zero_fen_taps",
                who,
                &Tally { records: issuer.card_zero_fen_taps, amount_fen: 0 },
            ));
            rows.push(Row::tally(ISSUER, "card_loads", who, &issuer.card_loads));
            rows.push(Row::tally(ISSUER, "host_loads", who, &issuer.host_loads));
            rows.push(Row::tally(ISSUER, "platform_loads", who, &issuer.platform_loads));
            rows.push(Row::tally(ISSUER, "platform_fees", who, &issuer.platform_fees));
            rows.push(Row::tally(ISSUER, "platform_refunds", who, &issuer.platform_refunds));
            rows.push(Row::amount(ISSUER, "platform_load_difference", who, issuer.platform_load_difference_fen));
        }
        for position in &self.positions {
            let who = Some(&position.participant);
            rows.push(Row::amount(POSITION, "receivable", who, position.receivable_fen));
            rows.push(Row::amount(POSITION, "payable", who, position.payable_fen));
            rows.push(Row::amount(POSITION, "net", who, position.net_fen));
        }
        let r = &self.reconciliation;
        rows.push(Row::tally(RECONCILIATION, "debits_cleared", None, &r.debits_cleared));
        rows.push(Row::tally(RECONCILIATION, "debit_lines", None, &r.debit_lines));
        rows.push(Row::tally(RECONCILIATION, "loads_cleared", None, &r.loads_cleared));
        rows.push(Row::tally(RECONCILIATION, "load_lines", None, &r.load_lines));
        rows.push(Row::tally(RECONCILIATION, "host_loads", None, &r.host_loads));
        rows.push(Row::tally(RECONCILIATION, "platform_loads", None, &r.platform_loads));
        rows.push(Row::amount(RECONCILIATION, "platform_load_difference", None, r.platform_load_difference_fen));
        rows.push(Row::tally(RECONCILIATION, "platform_fees", None, &r.platform_fees));
        rows.push(Row::tally(RECONCILIATION, "platform_refunds", None, &r.platform_refunds));
        rows.push(Row::amount(RECONCILIATION, "net_positions_sum", None, r.net_positions_sum_fen));
        rows.push(Row::tally(RECONCILIATION, "pending_debits", None, &r.pending_debits));
        rows.push(Row::tally(RECONCILIATION, "pending_loads", None, &r.pending_loads));
        let outside = &r.outside_day;
        rows.push(Row::count(RECONCILIATION, "outside_day_cleared_records", None, outside.cleared_records));
        rows.push(Row::count(RECONCILIATION, "outside_day_pending_records", None, outside.pending_records));
        rows.push(Row::count(RECONCILIATION, "outside_day_platform_entries", None, outside.platform_entries));
        rows
    }
}

/// Writes `cell`, quoted (RFC 4180: inner quotes doubled) when it holds a comma, a quote or a
/// line break.
fn push_cell(text: &mut String, cell: &str) {
    if cell.contains([',', '"', '\n', '\r']) {
        text.push('"');
        text.push_str(&cell.replace('"', "\"\""));
        text.push('"');
    } else {
        text.push_str(cell);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_quoted_only_when_they_must_be() {
        let mut text = String::new();
        for cell in ["plain 北京", "a,b", "say \"hi\"", "two\nlines"] {
            push_cell(&mut text, cell);
            text.push('|');
        }
        assert_eq!(text, "plain 北京|\"a,b\"|\"say \"\"hi\"\"\"|\"two\nlines\"|");
    }
}
