//! The accumulator: records and entries in, one at a time; the day's report out.

use std::collections::{BTreeMap, HashSet};

use yitong_record::{TapId, TapRecord};

use super::line::{Site, TOPUP_OVER_THE_AIR};
use super::report::{
    DayReport, IssuerTotals, ObligationLine, OperatorTotals, OutsideDay, Party, Position, Reconciliation, Tally,
};
use super::{BusinessDay, LineKey, LineKind, Participant, Participants, PlatformEntry, PlatformEntryKind, SettleError};

/// Most records and platform entries one settlement takes, so that no sum of fen can overflow.
pub const INPUTS_MAX: u64 = 1_000_000_000;
const _: () = assert!(INPUTS_MAX as i128 * u32::MAX as i128 <= i64::MAX as i128);

/// Whether an input was counted in the day.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counted {
    /// It falls in the day and is counted.
    InDay,
    /// It falls outside the day: only its tap ID (for records) is remembered, to catch repeats.
    OutsideDay,
}

/// One business day being settled. Feed it every cleared record
/// ([`add_cleared`](Self::add_cleared)), every pending record ([`add_pending`](Self::add_pending))
/// and the platform's entries ([`add_platform_entry`](Self::add_platform_entry)) in any order,
/// then take the [`report`](Self::report). An input refused with an error changes nothing.
#[derive(Debug)]
pub struct DaySettlement<'p> {
    day: BusinessDay,
    participants: &'p Participants,
    taps_seen: HashSet<TapId>,
    inputs: u64,
    lines: BTreeMap<LineKey, Tally>,
    operators: BTreeMap<Participant, OperatorTotals>,
    issuers: BTreeMap<[u8; 8], IssuerTotals>,
    debits_cleared: Tally,
    loads_cleared: Tally,
    pending_debits: Tally,
    pending_loads: Tally,
    outside_day: OutsideDay,
}

impl<'p> DaySettlement<'p> {
    /// Settles `day`, naming participants from `participants`.
    pub fn new(day: BusinessDay, participants: &'p Participants) -> Self {
        DaySettlement {
            day,
            participants,
            taps_seen: HashSet::new(),
            inputs: 0,
            lines: BTreeMap::new(),
            operators: BTreeMap::new(),
            issuers: BTreeMap::new(),
            debits_cleared: Tally::default(),
            loads_cleared: Tally::default(),
            pending_debits: Tally::default(),
            pending_loads: Tally::default(),
            outside_day: OutsideDay::default(),
        }
    }

    /// A record the back office accepted and decided as charged (confirmed, recovered, or
    /// unconfirmed and settled as charged): on its obligation line if it falls in the day.
    pub fn add_cleared(&mut self, record: &TapRecord) -> Result<Counted, SettleError> {
        self.admit(record)?;
        if !self.day.contains(&record.at) {
            self.remember(record);
            self.outside_day.cleared_records += 1;
            return Ok(Counted::OutsideDay);
        }
        let key = LineKey::of(record, self.participants)?;
        self.remember(record);
        self.lines.entry(key).or_default().add(record.amount_fen);
        if record.kind.is_load() {
            self.loads_cleared.add(record.amount_fen);
            self.issuer(record.issuer_id).card_loads.add(record.amount_fen);
            if let Some(Site::TopUp { city_code, number: TOPUP_OVER_THE_AIR }) = Site::of(record.terminal_id) {
                self.issuer(self.participants.issuer_of_city(city_code)).host_loads.add(record.amount_fen);
            }
        } else {
            self.debits_cleared.add(record.amount_fen);
            let zero = record.amount_fen == 0;
            let issuer = self.issuer(record.issuer_id);
            if zero {
                issuer.card_zero_fen_taps += 1;
            } else {
                issuer.card_debits.add(record.amount_fen);
            }
            if let payee @ Participant::Operator { .. } = key.payee {
                let operator = self.operator(payee);
                if zero {
                    operator.zero_fen_taps += 1;
                } else {
                    operator.purchases.add(record.amount_fen);
                }
            }
        }
        Ok(Counted::InDay)
    }

    /// A record not decided yet: counted apart, on no line.
    pub fn add_pending(&mut self, record: &TapRecord) -> Result<Counted, SettleError> {
        self.admit(record)?;
        self.remember(record);
        if !self.day.contains(&record.at) {
            self.outside_day.pending_records += 1;
            return Ok(Counted::OutsideDay);
        }
        if record.kind.is_load() {
            self.pending_loads.add(record.amount_fen);
        } else {
            self.pending_debits.add(record.amount_fen);
        }
        Ok(Counted::InDay)
    }

    /// A fee, refund or paid load from the platform's ledger.
    pub fn add_platform_entry(&mut self, entry: &PlatformEntry) -> Result<Counted, SettleError> {
        self.count_input()?;
        if !self.day.contains(&entry.at) {
            self.outside_day.platform_entries += 1;
            return Ok(Counted::OutsideDay);
        }
        let issuer = self.issuer(entry.issuer_id);
        let tally = match entry.kind {
            PlatformEntryKind::Fee => &mut issuer.platform_fees,
            PlatformEntryKind::Refund => &mut issuer.platform_refunds,
            PlatformEntryKind::LoadPaid => &mut issuer.platform_loads,
        };
        tally.add(entry.amount_fen);
        Ok(Counted::InDay)
    }

    /// The day's report. Asserts (in release too) that both sums of every reconciliation pair
    /// agree and that the nets sum to zero.
    pub fn report(self) -> DayReport {
        let name = |id: Participant| Party { id, name: self.participants.name(&id) };
        let obligations: Vec<ObligationLine> = self
            .lines
            .iter()
            .map(|(key, tally)| ObligationLine {
                kind: key.kind,
                payer: name(key.payer),
                payee: name(key.payee),
                records: tally.records,
                amount_fen: tally.amount_fen,
            })
            .collect();

        let (mut debit_lines, mut load_lines) = (Tally::default(), Tally::default());
        let mut receivable: BTreeMap<Participant, i64> = BTreeMap::new();
        let mut payable: BTreeMap<Participant, i64> = BTreeMap::new();
        for (key, tally) in &self.lines {
            match key.kind {
                LineKind::Purchase | LineKind::ServiceDesk => debit_lines.merge(tally),
                LineKind::Load => load_lines.merge(tally),
            }
            *receivable.entry(key.payee).or_default() += tally.amount_fen;
            *payable.entry(key.payer).or_default() += tally.amount_fen;
            receivable.entry(key.payer).or_default();
            payable.entry(key.payee).or_default();
        }
        let positions: Vec<Position> = receivable
            .iter()
            .map(|(&participant, &receivable_fen)| {
                let payable_fen = payable.get(&participant).copied().unwrap_or_default();
                Position {
                    participant: name(participant),
                    receivable_fen,
                    payable_fen,
                    net_fen: receivable_fen - payable_fen,
                }
            })
            .collect();
        let net_positions_sum_fen: i64 = positions.iter().map(|p| p.net_fen).sum();

        let mut issuers: Vec<IssuerTotals> = self.issuers.into_values().collect();
        let (mut host_loads, mut platform_loads) = (Tally::default(), Tally::default());
        let (mut platform_fees, mut platform_refunds) = (Tally::default(), Tally::default());
        for issuer in &mut issuers {
            issuer.platform_load_difference_fen = issuer.platform_loads.amount_fen - issuer.host_loads.amount_fen;
            host_loads.merge(&issuer.host_loads);
            platform_loads.merge(&issuer.platform_loads);
            platform_fees.merge(&issuer.platform_fees);
            platform_refunds.merge(&issuer.platform_refunds);
        }

        assert_eq!(debit_lines, self.debits_cleared, "every cleared debit is on exactly one line");
        assert_eq!(load_lines, self.loads_cleared, "every cleared load is on exactly one line");
        assert_eq!(net_positions_sum_fen, 0, "net positions sum to zero");

        DayReport {
            day: self.day,
            cut_over: self.day.cut_over(),
            from: self.day.start(),
            until: self.day.end(),
            obligations,
            operators: self.operators.into_values().collect(),
            issuers,
            positions,
            reconciliation: Reconciliation {
                debits_cleared: self.debits_cleared,
                debit_lines,
                loads_cleared: self.loads_cleared,
                load_lines,
                host_loads,
                platform_loads,
                platform_load_difference_fen: platform_loads.amount_fen - host_loads.amount_fen,
                platform_fees,
                platform_refunds,
                net_positions_sum_fen,
                pending_debits: self.pending_debits,
                pending_loads: self.pending_loads,
                outside_day: self.outside_day,
            },
        }
    }

    /// Refuses a record over the limit or seen before; changes nothing.
    fn admit(&mut self, record: &TapRecord) -> Result<(), SettleError> {
        let tap_id = record.tap_id();
        if self.taps_seen.contains(&tap_id) {
            return Err(SettleError::RepeatedTap { tap_id });
        }
        if self.inputs >= INPUTS_MAX {
            return Err(SettleError::TooManyInputs { max: INPUTS_MAX });
        }
        Ok(())
    }

    /// Counts an admitted record and remembers its tap ID.
    fn remember(&mut self, record: &TapRecord) {
        self.inputs += 1;
        let fresh = self.taps_seen.insert(record.tap_id());
        assert!(fresh, "admit refused repeated taps");
    }

    fn count_input(&mut self) -> Result<(), SettleError> {
        if self.inputs >= INPUTS_MAX {
            return Err(SettleError::TooManyInputs { max: INPUTS_MAX });
        }
        self.inputs += 1;
        Ok(())
    }

    fn issuer(&mut self, issuer_id: [u8; 8]) -> &mut IssuerTotals {
        let participants = self.participants;
        self.issuers.entry(issuer_id).or_insert_with(|| {
            let id = Participant::Issuer { issuer_id };
            IssuerTotals {
                issuer: Party { id, name: participants.name(&id) },
                card_debits: Tally::default(),
                card_zero_fen_taps: 0,
                card_loads: Tally::default(),
                host_loads: Tally::default(),
                platform_loads: Tally::default(),
                platform_fees: Tally::default(),
                platform_refunds: Tally::default(),
                platform_load_difference_fen: 0,
            }
        })
    }

    fn operator(&mut self, id: Participant) -> &mut OperatorTotals {
        let participants = self.participants;
        self.operators.entry(id).or_insert_with(|| OperatorTotals {
            operator: Party { id, name: participants.name(&id) },
            purchases: Tally::default(),
            zero_fen_taps: 0,
        })
    }
}

/// Settles `day`: the cleared records, the pending ones and the platform's entries (any of any
/// day: only the day's are counted), named from `participants`. See [`DaySettlement`].
pub fn settle<'a>(
    day: BusinessDay,
    cleared: impl IntoIterator<Item = &'a TapRecord>,
    pending: impl IntoIterator<Item = &'a TapRecord>,
    platform_entries: impl IntoIterator<Item = &'a PlatformEntry>,
    participants: &Participants,
) -> Result<DayReport, SettleError> {
    let mut settlement = DaySettlement::new(day, participants);
    for record in cleared {
        settlement.add_cleared(record)?;
    }
    for record in pending {
        settlement.add_pending(record)?;
    }
    for entry in platform_entries {
        settlement.add_platform_entry(entry)?;
    }
    Ok(settlement.report())
}
