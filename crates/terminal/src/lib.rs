//! The transit gate: metro entry and exit, bus validation and top-up, as sans-IO state machines
//! that talk to a card through a [`CardChannel`] and to keys through a [`SecurityModule`].
//!
//! The principal type is [`Gate`]. Each tap reads the card's FCI (EF15: serial, issuer,
//! validity), checks the hotlist and the dates, resolves any transaction this gate left in
//! doubt with GET TRANSACTION PROVE, reads the EF1A metro record to choose entry or exit, asks
//! the [`FarePolicy`] for the fare, and runs INITIALIZE FOR CAPP PURCHASE / UPDATE CAPP DATA
//! CACHE (EF1A, EF1E) / DEBIT in six card APDUs, with MAC1 and the MAC2 check in the security
//! module. Every completed transaction becomes a [`TapRecord`] for clearing. A
//! [`TopUpTerminal`] loads cards with a [`LoadKeyHolder`].
//!
//! A money command whose answer is lost stays in doubt in the terminal's [`GateState`] until the
//! card's evidence settles it (its proof, its EF18 log, its counters): the record is then
//! `recovered`, or handed on `unconfirmed` when the card can no longer tell — never dropped. Metro
//! gates have a [`Direction`]; they refuse double taps, incomplete trips and exits before their
//! entry, and block hotlisted cards with APPLICATION BLOCK.
//!
//! The gate does no I/O itself: [`run_tap`] drives it over a channel (a PC/SC reader, a socket,
//! or, with the `in-process` feature, a `yitong-card` card in the same process), and the caller
//! persists [`GateState`] when asked. Time is an input.
//!
//! ```
//! # #[cfg(feature = "in-process")] {
//! use yitong_terminal::{city, run_tap, Direction, Gate, GateConfig, GateMode, GateState, SoftwarePsam};
//! let beijing = yitong_fare::City::builtin("beijing").unwrap();
//! let (station, station_name) = city::station_id(&beijing, "Xidan").unwrap();
//! let config = GateConfig {
//!     city: beijing.profile().into(), mode: GateMode::Metro, direction: Direction::Both, station, station_name,
//!     hotlist: Default::default(),
//! };
//! let psam = SoftwarePsam::new([0x10, 0, 0, 0, 0, 1], 1);
//! let gate = Gate::new(config, Box::new(psam), Box::new(beijing), GateState::default());
//! # let _ = (gate, run_tap::<yitong_terminal::InProcessChannel<yitong_card::MemStore, yitong_card::testing::CountingRng>>);
//! # }
//! ```
#![forbid(unsafe_code)]

mod channel;
pub mod city;
mod doubt;
mod driver;
mod error;
pub mod fare;
mod fci;
mod gate;
mod inspect;
mod outcome;
mod psam;
mod record;
mod state;
mod topup;

#[cfg(feature = "in-process")]
pub use channel::InProcessChannel;
pub use channel::{CardChannel, ChannelError};
pub use driver::{run_load, run_tap, TAP_APDUS_MAX};
pub use error::TapError;
pub use fare::{FareError, FarePolicy, MetroFare, MetroTrip};
pub use gate::{Direction, Gate, GateConfig, GateMode, Tap, RECOVERY_WINDOW_S};
pub use inspect::{read_card, CardReport, LogEntry, MetroState, StationVisit, TripEntry};
pub use outcome::{Next, Refusal, TapOutcome, TapResult};
pub use psam::{
    IssuerKeys, LoadKeyHolder, LoadRequest, Mac1Request, PsamKeys, SamError, SecurityModule, SoftwareLoadHost,
    SoftwarePsam,
};
pub use record::{RecordStatus, TapId, TapKind, TapRecord};
pub use state::{CardId, GateState, PendingDebit, OUTBOX_MAX, PENDING_MAX};
pub use topup::{Load, TopUpTerminal};
