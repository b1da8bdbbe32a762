//! The wallet side for issuance and top-up tests: the platform's services over a test database,
//! Beijing's development keys, phones, and a real in-process card playing the phone's SE.

use std::sync::Arc;

use yitong_card::testing::CountingRng;
use yitong_card::{Card, MemStore};
use yitong_crypto::{Algorithm, MasterKeys};
use yitong_platform::cities::Cities;
use yitong_platform::closure::{ClosureService, ClosureStep};
use yitong_platform::devices::DeviceRegistry;
use yitong_platform::issuance::{CardApplication, Issuance, IssuanceService, IssuedCard, Phone};
use yitong_platform::issuer_keys::IssuerKeyring;
use yitong_platform::ledger::{CardId, Fen};
use yitong_platform::ota::OtaService;
use yitong_platform::payments::{
    MerchantOrderId, NewOrder, NotificationOutcome, OrderKind, PayOutcome, PaymentService, SimulatedProvider,
    SimulationFaults,
};
use yitong_platform::pricing::Channel;
use yitong_platform::store::Store;
use yitong_profile::apdu::{self, transaction_type, PurchaseInit};
use yitong_profile::DateTime;
use yitong_record::{RecordStatus, TapKind, TapRecord};
use yitong_terminal::{IssuerKeys, Mac1Request, SecurityModule, SoftwarePsam};

/// 2026-11-25 02:00:00 UTC (10:00 in Beijing), Unix milliseconds.
pub const T0: i64 = 1_795_572_000_000;

/// Beijing's development master keys (load, purchase, TAC, maintenance, unblock), version 1.
pub fn beijing_keys() -> IssuerKeys {
    IssuerKeys {
        key_version: 1,
        master: MasterKeys::new(Algorithm::Des, [0x11; 16], [0x22; 16], [0x33; 16], [0x44; 16], [0x55; 16]),
    }
}

pub fn keyring(cities: &Cities) -> IssuerKeyring {
    let mut keys = IssuerKeyring::new();
    keys.add(cities.get("beijing").expect("Beijing"), beijing_keys());
    keys
}

/// Local time in Beijing on 25 November 2026.
pub fn at(hour: u8, minute: u8, second: u8) -> DateTime {
    DateTime::new(2026, 11, 25, hour, minute, second).expect("a real time")
}

pub fn id(text: &str) -> MerchantOrderId {
    MerchantOrderId::parse(text).expect("valid")
}

pub fn fen(amount: i64) -> Fen {
    Fen::new(amount).expect("not negative")
}

/// Payments (a fault-free simulated provider, shareable over pools), issuance and the load host.
pub struct Wallet {
    pub payments: Arc<PaymentService<Arc<SimulatedProvider>>>,
    pub issuance: IssuanceService,
    pub ota: Arc<OtaService>,
    pub provider: Arc<SimulatedProvider>,
}

impl Wallet {
    pub fn new(store: Store) -> Wallet {
        let cities = Cities::builtin().expect("the ten regions");
        let devices = DeviceRegistry::builtin(&cities).expect("the catalogue");
        let keys = keyring(&cities);
        let provider = Arc::new(SimulatedProvider::new(7, SimulationFaults::NONE));
        Wallet {
            payments: Arc::new(PaymentService::new(store, provider.clone())),
            ota: Arc::new(OtaService::new(cities.clone(), &keys)),
            issuance: IssuanceService::new(cities, devices, keys),
            provider,
        }
    }

    /// The same services over another pool on the same database and provider.
    pub fn other_pool(&self, store: Store) -> Arc<PaymentService<Arc<SimulatedProvider>>> {
        Arc::new(PaymentService::new(store, self.provider.clone()))
    }

    pub fn store(&self) -> &Store {
        self.payments.store()
    }

    /// The rider pays order `order` in the provider's app; the signed notification arrives.
    pub async fn pay(&self, order: &MerchantOrderId, now_ms: i64) {
        assert_eq!(self.provider.pay(order, now_ms), PayOutcome::Paid { notifications: 1 });
        let notification = self.provider.poll_notification().expect("a notification");
        let outcome = self.payments.handle_notification(&notification, now_ms + 500).await.expect("verified");
        assert!(matches!(outcome, NotificationOutcome::Paid(_)), "{outcome:?}");
    }

    /// A Beijing card for `device`, its fee paid if one is asked.
    pub async fn issue(&self, device: &str, fee_order: &str) -> IssuedCard {
        let application = mi6(device, fee_order);
        match self.issuance.request_card(&self.payments, &application, at(10, 0, 0), T0).await.expect("asked") {
            Issuance::Issued(card) => *card,
            Issuance::PaymentRequired { order, .. } => {
                self.pay(&order.merchant_order_id, T0 + 1_000).await;
                match self.issuance.request_card(&self.payments, &application, at(10, 0, 5), T0 + 5_000).await {
                    Ok(Issuance::Issued(card)) => *card,
                    other => panic!("expected the card, got {other:?}"),
                }
            }
        }
    }

    /// Opens and pays a top-up of `amount` fen onto `card`.
    pub async fn paid_top_up(&self, order: &str, card: &CardId, amount: i64, now_ms: i64) -> MerchantOrderId {
        let new = NewOrder {
            merchant_order_id: id(order),
            kind: OrderKind::TopUp,
            card_id: Some(card.clone()),
            amount: fen(amount),
            description: "Beijing card top-up".to_owned(),
        };
        let opened = self.payments.open_order(new, now_ms).await.expect("opened");
        self.pay(&opened.merchant_order_id, now_ms + 1_000).await;
        opened.merchant_order_id
    }
}

/// A Xiaomi Mi 6 (embedded SE) asking for a Beijing card in Mi Wallet.
pub fn mi6(device: &str, fee_order: &str) -> CardApplication {
    CardApplication {
        phone: Phone {
            device_id: device.to_owned(),
            se_id: format!("SE-{device}"),
            maker: "Xiaomi".to_owned(),
            model: "Mi 6".to_owned(),
            carrier: None,
        },
        city: "beijing".to_owned(),
        channel: Channel::MakerWallet,
        fee_order_id: id(fee_order),
    }
}

/// The phone's secure element: a real card from the issued image.
pub struct SecureElement {
    card: Card<MemStore, CountingRng>,
}

impl SecureElement {
    pub fn new(image: &[u8], rng_start: u32) -> SecureElement {
        let card = Card::power_on(MemStore::new(image.to_vec()), CountingRng(rng_start)).expect("the image powers on");
        let mut se = SecureElement { card };
        se.ok(&apdu::select_by_name(&apdu::AID_TUNION));
        se
    }

    /// The card's whole answer.
    pub fn send(&mut self, command: &[u8]) -> Vec<u8> {
        self.card.process(command).expect("no power loss in memory")
    }

    /// The data of a `9000` answer.
    pub fn ok(&mut self, command: &[u8]) -> Vec<u8> {
        let answer = self.send(command);
        let (data, sw) = answer.split_at(answer.len() - 2);
        assert_eq!(sw, [0x90, 0x00], "{} answered {}", hex::encode_upper(command), hex::encode_upper(&answer));
        data.to_vec()
    }

    pub fn balance_fen(&mut self) -> i32 {
        let data = self.ok(&apdu::get_balance());
        i32::from_be_bytes(data.try_into().expect("4 bytes"))
    }
}

/// A metro gate of Beijing (its own PSAM) charges `amount` fen on the phone's card at 10:45 and
/// `second` seconds: money the platform hears of only from the gate's upload — the gate's record
/// of it, with the TAC the card answered.
pub fn gate_purchase(wallet: &Wallet, se: &mut SecureElement, card: &CardId, amount: u32, second: u8) -> TapRecord {
    let beijing = wallet.issuance.cities().get("beijing").unwrap();
    let gate = [0x10, 0x00, 0x01, 0x23, 0x00, 0x01];
    let mut psam = SoftwarePsam::new(gate, 1 + u32::from(second));
    psam.add_issuer(beijing.issuer_id(), beijing_keys());
    let init = PurchaseInit::decode(&se.ok(&apdu::initialize_for_purchase(false, amount, gate))).unwrap();
    let mut serial = [0u8; 10];
    hex::decode_to_slice(card.as_str(), &mut serial).unwrap();
    let when = at(10, 45, second);
    let request = Mac1Request {
        card_random: init.card_random,
        offline_counter: init.offline_counter,
        amount_fen: amount,
        transaction_type: transaction_type::EP_PURCHASE,
        at: when,
        key_version: init.key_version,
        algorithm_id: init.algorithm_id,
        asn8: yitong_profile::files::asn8(&serial),
        issuer_id: beijing.issuer_id(),
    };
    let (number, mac1) = psam.purchase_mac1(&request).unwrap();
    let answer = se.ok(&apdu::debit_for_purchase(number, when.date_bcd(), when.time_bcd(), mac1));
    let before = i64::from(init.balance_fen);
    TapRecord {
        status: RecordStatus::Confirmed,
        kind: TapKind::Single,
        transaction_type: transaction_type::EP_PURCHASE,
        card_serial: serial,
        issuer_id: beijing.issuer_id(),
        counter: init.offline_counter + 1,
        amount_fen: amount,
        balance_before_fen: before,
        balance_after_fen: before - i64::from(amount),
        terminal_id: gate,
        terminal_transaction_number: number,
        at: when,
        city: "beijing".into(),
        city_code: beijing.city_code(),
        station: String::new(),
        line: 1,
        station_code: 0x23,
        card_random: init.card_random,
        key_version: init.key_version,
        algorithm_id: init.algorithm_id,
        mac2: Some(answer[4..8].try_into().unwrap()),
        tac: Some(answer[..4].try_into().unwrap()),
    }
}

/// The closure service over the wallet's issuance, with Beijing's keys.
pub fn closures(wallet: &Wallet) -> ClosureService {
    ClosureService::new(wallet.issuance.clone(), &keyring(wallet.issuance.cities()), [7; 32])
}

/// A Beijing card with `amount` fen loaded over the air, and its secure element.
pub async fn loaded_card(wallet: &Wallet, device: &str, amount: i64) -> (CardId, SecureElement) {
    let issued = wallet.issue(device, &format!("F-{device}")).await;
    let card = issued.card.card_id.clone();
    let mut se = SecureElement::new(&issued.image, 0);
    let order = wallet.paid_top_up(&format!("T-{device}"), &card, amount, T0).await;
    let command = wallet.ota.initialize_command(&wallet.payments, &order).await.unwrap();
    let answer = se.send(&command);
    let auth = wallet.ota.authorize(&wallet.payments, &order, &answer, at(10, 30, 0), T0 + 10_000).await.unwrap();
    let credit = se.send(&auth.credit_command);
    wallet.ota.complete(&wallet.payments, &order, &credit, T0 + 11_000).await.unwrap();
    (card, se)
}

/// Pumps a closure to its end: each command to the card, each answer back.
pub async fn pump(
    service: &ClosureService,
    wallet: &Wallet,
    se: &mut SecureElement,
    mut step: ClosureStep,
) -> ClosureStep {
    for n in 0..32 {
        let Some(command) = step.command.clone() else { return step };
        let answer = se.send(&command);
        step = service
            .answer(&wallet.payments, &step.closure_id, &answer, at(11, 0, n), T0 + 60_000 + i64::from(n))
            .await
            .unwrap();
    }
    panic!("the closure did not end: {step:?}");
}
