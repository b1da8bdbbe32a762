//! Daily clearing and inter-city settlement: which business day a record belongs to, who owes
//! whom for it, and a report whose figures reconcile.
//!
//! The principal function is [`settle`] (or, one input at a time, [`DaySettlement`]); it
//! returns a [`DayReport`], serialized as JSON with serde and as CSV by [`DayReport::to_csv`].
//! Like the rest of the crate it does no I/O: the caller reads the day's records and the
//! platform's entries from its store and gives them here.
//!
//! # The business day
//!
//! A [`BusinessDay`] runs from its date at the [`CutOver`] (04:00 local by default) to the next
//! date at the cut-over, excluded, and is written `YYYY-MM-DD`: with the default, a record at
//! 2026-11-26 03:59:59 belongs to 2026-11-25, one at 04:00:00 to 2026-11-26. Records and entries
//! of other days may be given: they are counted apart (`outside_day`), never settled.
//!
//! # What is cleared
//!
//! Only records the back office accepted and decided count: the caller gives confirmed and
//! recovered records, and unconfirmed ones once settled as charged, as *cleared*; records still
//! undecided as *pending* (reported as totals, on no line); voided ones not at all. Ingestion
//! dedupes uploads, so a tap ID given twice (cleared or pending) is an error naming it
//! ([`SettleError::RepeatedTap`]), as is a terminal ID of no known layout or a load at a gate.
//!
//! # Participants and obligations
//!
//! A [`Participant`] is an issuer (`issuer:0000100000000001`) or a city's metro or bus operator
//! (`metro:2900`, `bus:1000`); names come from the caller's [`Participants`] table (one
//! [`CityParticipants`] per city), and a city or issuer missing from it gets a name saying so.
//! Under T-Union interoperability the issuer holds the riders' prepaid money and the operator
//! that carried the rider earned the fare, so each cleared record is on exactly one
//! [`ObligationLine`] (see [`LineKey::of`]):
//!
//! | record | terminal (`city` = its first two bytes) | payer → payee | line kind |
//! |---|---|---|---|
//! | purchase (entry, exit, single) | metro gate `city · station · 00 · gate` | card's issuer → `metro:city` | `purchase` |
//! | purchase | bus validator `city · route · B0 · validator` | card's issuer → `bus:city` | `purchase` |
//! | purchase | top-up terminal `city · FFFF · number` (service desk 0003) | card's issuer → city's issuer | `service_desk` |
//! | load | top-up terminal `city · FFFF · number` (CLI 0001, over the air 0002) | city's issuer → card's issuer | `load` |
//!
//! A Beijing card riding Shanghai's metro puts its fare on `issuer:0000100000000001 →
//! metro:2900`; a ride in its own city still owes its own city's operator. A load at the
//! terminal of the card's own issuer is a line from the issuer to itself: it stays on the
//! report, so that every fen is on a line, and cancels in the issuer's net. Lines are grouped by
//! (kind, payer, payee) and count their records, taps of 0 fen included.
//!
//! # The report
//!
//! - `obligations`: the lines, by kind, payer, payee — each with `records` and `amount_fen`.
//! - `operators` ([`OperatorTotals`]): `purchases` (more than 0 fen) and `zero_fen_taps`.
//! - `issuers` ([`IssuerTotals`]): its cards' `card_debits` and `card_zero_fen_taps`,
//!   `card_loads`; `host_loads`, the loads cards show from the platform's over-the-air host of
//!   its city (`city · FFFF · 0002`); the platform's `platform_loads`, `platform_fees`,
//!   `platform_refunds` from the [`PlatformEntry`]s; and `platform_load_difference_fen`.
//! - `positions` ([`Position`]): per participant on a line, `receivable_fen` (lines it is owed),
//!   `payable_fen` (lines it owes) and `net_fen` = receivable − payable. The nets sum to zero.
//! - `reconciliation` ([`Reconciliation`]): see below.
//!
//! Only participants with something to report appear. Money is integer fen (`i64` sums of the
//! records' `u32` amounts; [`INPUTS_MAX`] inputs keep every sum in range).
//!
//! # The CSV
//!
//! One file, one row per figure, the same nine columns on every row ([`CSV_HEADER`]):
//! `day,section,item,participant,participant_name,counterparty,counterparty_name,records,amount_fen`.
//! Rows come in section order, each section in the report's order; an empty cell means "not
//! applicable"; cells holding a comma, quote or line break are quoted (RFC 4180); lines end in
//! `\n`.
//!
//! | section | item | participant | counterparty | records | amount_fen |
//! |---|---|---|---|---|---|
//! | `obligation` | `purchase`, `service_desk`, `load` | payer | payee | ✓ | ✓ |
//! | `operator` | `purchases`, `zero_fen_taps` (amount 0) | operator | | ✓ | ✓ |
//! | `issuer` | `card_debits`, `card_zero_fen_taps` (amount 0), `card_loads`, `host_loads`, `platform_loads`, `platform_fees`, `platform_refunds` | issuer | | ✓ | ✓ |
//! | `issuer` | `platform_load_difference` | issuer | | | ✓ |
//! | `position` | `receivable`, `payable`, `net` | participant | | | ✓ |
//! | `reconciliation` | `debits_cleared`, `debit_lines`, `loads_cleared`, `load_lines`, `host_loads`, `platform_loads`, `platform_fees`, `platform_refunds`, `pending_debits`, `pending_loads` | | | ✓ | ✓ |
//! | `reconciliation` | `platform_load_difference`, `net_positions_sum` | | | | ✓ |
//! | `reconciliation` | `outside_day_cleared_records`, `outside_day_pending_records`, `outside_day_platform_entries` | | | ✓ | |
//!
//! Every fen is on exactly one row of the `obligation` section; the other sections total the
//! same money in other ways, so the file's `amount_fen` column is not to be summed whole.
//!
//! # The reconciliation
//!
//! Each pair is computed twice, from the records as they come and from the lines, and the two
//! must agree (asserted, in release builds too): `debits_cleared` = `debit_lines` (the cleared
//! purchases are the debits the shadow balances applied that day) and `loads_cleared` =
//! `load_lines` (the credits seen on cards); `net_positions_sum` is 0. The platform's ledger and
//! the cards are compared, not forced: `platform_load_difference` = `platform_loads` −
//! `host_loads`, per issuer and in all, shown whatever it is (a load paid before the cut-over
//! and put on the card after it, or one still pending, shows here). Pending records are totalled
//! in `pending_debits` and `pending_loads`, on no line.
//!
//! # Example
//!
//! ```
//! use yitong_clearing::settlement::{settle, BusinessDay, CityParticipants, CutOver, Participants};
//! use yitong_record::TapRecord;
//!
//! // A Beijing card (issuer 0000100000000001) leaves Shanghai's metro (gate 290000120001).
//! let record: TapRecord = serde_json::from_str(r#"{"tap_id":"290000120001-7","status":"confirmed",
//!   "kind":"exit","transaction_type":9,"card_number":"0000000000000123456",
//!   "card_serial":"10000000000000123456","issuer_id":"0000100000000001","counter":3,"amount_fen":500,
//!   "balance_before_fen":5000,"balance_after_fen":4500,"terminal_id":"290000120001",
//!   "terminal_transaction_number":7,"at":"2026-11-26 01:30:00","city":"shanghai","city_code":"2900",
//!   "station":"人民广场","line":1,"station_code":18,"card_random":"01020304","key_version":1,
//!   "algorithm_id":0,"mac2":null,"tac":"11223344"}"#).unwrap();
//! let participants = Participants::new([
//!     CityParticipants::new(0x1000, "北京 Beijing", [0, 0, 0x10, 0, 0, 0, 0, 1], "Beijing Card"),
//!     CityParticipants::new(0x2900, "上海 Shanghai", [0, 0, 0x29, 0, 0, 0, 0, 1], "Shanghai Card"),
//! ]).unwrap();
//! // 01:30 is before the 04:00 cut-over: the ride belongs to the 25th.
//! let day = BusinessDay::parse("2026-11-25", CutOver::DEFAULT).unwrap();
//! let report = settle(day, [&record], [], [], &participants).unwrap();
//! let line = &report.obligations[0];
//! assert_eq!((line.payer.name.as_str(), line.payee.name.as_str()), ("Beijing Card", "上海 Shanghai metro"));
//! assert_eq!(line.amount_fen, 500);
//! assert!(report.to_csv().contains(
//!     "2026-11-25,obligation,purchase,issuer:0000100000000001,Beijing Card,metro:2900,上海 Shanghai metro,1,500\n"
//! ));
//! ```

mod csv;
mod day;
mod day_settlement;
mod error;
mod line;
mod participant;
mod platform_entry;
mod report;

pub use csv::CSV_HEADER;
pub use day::{BusinessDay, CutOver};
pub use day_settlement::{settle, Counted, DaySettlement, INPUTS_MAX};
pub use error::SettleError;
pub use line::{LineKey, LineKind, Site, TOPUP_OVER_THE_AIR};
pub use participant::{conventional_issuer_id, CityParticipants, Mode, Participant, Participants};
pub use platform_entry::{PlatformEntry, PlatformEntryKind};
pub use report::{
    DayReport, IssuerTotals, ObligationLine, OperatorTotals, OutsideDay, Party, Position, Reconciliation, Tally,
};
