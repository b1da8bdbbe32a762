//! The platform's write-side services the routes call: payments (the built-in simulated
//! provider), card issuance, the over-the-air load host and the service desk that closes cards,
//! over one store and one keyring.

use std::fmt;
use std::sync::Arc;

use yitong_platform::closure::ClosureService;
use yitong_platform::issuance::IssuanceService;
use yitong_platform::ota::OtaService;
use yitong_platform::payments::{PaymentService, SimulatedProvider};

/// The simulated provider's seed: a fixed one, so that its notification key is the same at
/// every start (development and tests; no real money moves).
pub const SIMULATED_PROVIDER_SEED: u64 = 8;

/// Payments, issuance, the load host and the service desk.
pub struct Services {
    /// The payment service over the built-in simulated provider.
    pub payments: PaymentService<Arc<SimulatedProvider>>,
    /// The simulated provider itself (its rider side pays orders: development only).
    pub provider: Arc<SimulatedProvider>,
    /// Card issuance.
    pub issuance: IssuanceService,
    /// The over-the-air load host.
    pub ota: OtaService,
    /// Card closure for a transfer or a deletion, and transfer claims.
    pub closures: ClosureService,
    /// The back office's TAC keys: every uploaded record is proven with them.
    pub tac: Arc<yitong_record::TacKeys>,
}

impl fmt::Debug for Services {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // No key material: the services' own `Debug`s show none either, but say so plainly.
        f.debug_struct("Services").field("provider", &"simulated").finish_non_exhaustive()
    }
}
