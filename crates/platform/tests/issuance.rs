//! Card issuance end to end on SQLite and PostgreSQL: the fee taken through a fee order, a
//! promotion that waives it up to its cap, repeated requests (never a second card or charge),
//! phones that cannot carry a card refused with the reason — and the ledger checked after each.

mod support;

use std::sync::Arc;

use support::wallet::{at, id, mi6, SecureElement, Wallet, T0};
use support::TestDb;
use yitong_platform::issuance::{Issuance, IssuanceError, Phone};
use yitong_platform::ledger::Account;
use yitong_platform::payments::{OrderState, ServiceError};
use yitong_platform::pricing::{Channel, PassedOver, PricingRules, Promotion, Window};
use yitong_platform::store::Store;

async fn assert_balanced(store: &Store) {
    let check = store.check_ledger().await.expect("checked");
    assert!(check.is_ok(), "{check}");
}

/// Sign-ups free in November 2026 for Xiaomi phones, for the first `cap`.
fn free_for_xiaomi(cap: u32) -> PricingRules {
    let promotion = Promotion {
        id: "mi-launch".to_owned(),
        makers: vec!["Xiaomi".to_owned()],
        channels: vec![],
        window: Window { starts: at(0, 0, 0), ends: yitong_profile::DateTime::new(2026, 12, 1, 0, 0, 0).unwrap() },
        fee_fen: 0,
        cap: Some(cap),
    };
    PricingRules::new(2_900, vec![promotion]).expect("valid rules")
}

async fn the_fee_is_paid_then_the_card_is_issued_once(db: &TestDb) {
    let wallet = Wallet::new(db.store.clone());
    let application = mi6("phone-A", "F00000001");
    let first = wallet.issuance.request_card(&wallet.payments, &application, at(10, 0, 0), T0).await.expect("asked");
    let Issuance::PaymentRequired { order, quote } = first else { panic!("expected a fee, got {first:?}") };
    assert_eq!((order.amount.get(), order.state), (2_900, OrderState::Created));
    assert_eq!((quote.fee_fen, quote.promotion), (2_900, None));
    // Asking again before paying opens no second order and issues nothing.
    let again = wallet.issuance.request_card(&wallet.payments, &application, at(10, 0, 1), T0 + 1).await.unwrap();
    assert!(matches!(again, Issuance::PaymentRequired { .. }));
    assert_eq!(wallet.store().phone_card(&"10000000000000000001".parse_card()).await.unwrap(), None);

    wallet.pay(&order.merchant_order_id, T0 + 1_000).await;
    let Issuance::Issued(card) =
        wallet.issuance.request_card(&wallet.payments, &application, at(10, 0, 5), T0 + 5_000).await.unwrap()
    else {
        panic!("expected the card")
    };
    assert!(!card.existing);
    assert_eq!(card.card.card_id.as_str(), "10000000000000000001");
    assert_eq!((card.card.fee.get(), card.card.fee_order_id.as_ref()), (2_900, Some(&order.merchant_order_id)));
    assert_eq!(card.image.len(), yitong_card::IMAGE_LEN);
    // The image is a real Beijing card: EF15 names the issuer, the serial and ten years of validity.
    let mut se = SecureElement::new(&card.image, 0);
    assert_eq!(
        hex::encode_upper(se.ok(&[0x00, 0xB0, 0x95, 0x00, 0x00])),
        "0000100000000001020110000000000000000001202611252036123100".to_owned() + "00"
    );
    assert_eq!(se.balance_fen(), 0);
    let fee_order = wallet.payments.order(&order.merchant_order_id).await.unwrap();
    assert_eq!(fee_order.state, OrderState::Issued);
    assert_eq!(wallet.store().balance(&Account::FeeRevenue).await.unwrap(), -2_900);
    assert_balanced(wallet.store()).await;

    // Repeated, with the same or another fee order ID: the same card, nothing charged.
    for order_id in ["F00000001", "F00000002"] {
        let repeated = mi6("phone-A", order_id);
        let Issuance::Issued(again) =
            wallet.issuance.request_card(&wallet.payments, &repeated, at(11, 0, 0), T0 + 60_000).await.unwrap()
        else {
            panic!("expected the existing card")
        };
        assert!(again.existing);
        assert_eq!((&again.card, &again.image), (&card.card, &card.image));
    }
    assert!(matches!(wallet.payments.order(&id("F00000002")).await, Err(ServiceError::OrderNotFound(_))));
    let history = wallet.payments.history(&order.merchant_order_id).await.unwrap();
    assert_eq!(history, [OrderState::Paid, OrderState::Issuing, OrderState::Issued]);
    assert_eq!(wallet.store().balance(&Account::FeeRevenue).await.unwrap(), -2_900);
    // The next phone gets the next serial.
    let next = wallet.issue("phone-B", "F00000003").await;
    assert_eq!(next.card.card_id.as_str(), "10000000000000000002");
    assert_balanced(wallet.store()).await;
}

async fn a_promotion_waives_the_fee_up_to_its_cap(db: &TestDb) {
    let mut wallet = Wallet::new(db.store.clone());
    wallet.issuance.set_pricing("beijing", free_for_xiaomi(2)).unwrap();
    for (n, device) in ["phone-1", "phone-2"].into_iter().enumerate() {
        let application = mi6(device, &format!("F0000000{n}"));
        let Issuance::Issued(card) =
            wallet.issuance.request_card(&wallet.payments, &application, at(10, 0, 0), T0).await.unwrap()
        else {
            panic!("expected a free card")
        };
        assert_eq!((card.card.fee.get(), card.card.promotion_id.as_deref()), (0, Some("mi-launch")));
        assert_eq!(card.card.fee_order_id, None);
    }
    // At the cap: the standard fee, and the quote says why.
    let third = wallet.issuance.request_card(&wallet.payments, &mi6("phone-3", "F00000003"), at(10, 1, 0), T0).await;
    let Ok(Issuance::PaymentRequired { order, quote }) = third else { panic!("expected a fee, got {third:?}") };
    assert_eq!((order.amount.get(), quote.fee_fen), (2_900, 2_900));
    assert_eq!(quote.passed_over, [("mi-launch".to_owned(), PassedOver::CapReached { cap: 2 })]);
    assert_eq!(wallet.store().promotion_signups("beijing").await.unwrap()["mi-launch"], 2);
    // A repeated request of a promoted phone is still its free card.
    let repeated = wallet.issuance.request_card(&wallet.payments, &mi6("phone-1", "F00000009"), at(10, 2, 0), T0).await;
    assert!(matches!(repeated, Ok(Issuance::Issued(card)) if card.existing && card.card.fee.get() == 0));
    assert_eq!(wallet.store().balance(&Account::FeeRevenue).await.unwrap(), 0);
    assert_balanced(wallet.store()).await;
}

async fn racing_requests_at_the_cap_get_one_card_each_and_the_cap_holds(db: &TestDb) {
    let mut wallet = Wallet::new(db.store.clone());
    wallet.issuance.set_pricing("beijing", free_for_xiaomi(3)).unwrap();
    let issuance = Arc::new(wallet.issuance.clone());
    let mut tasks = Vec::new();
    // Six phones, each asking twice at once, over two pools.
    for n in 0..12 {
        let payments = if n % 2 == 0 { wallet.payments.clone() } else { wallet.other_pool(db.open_again().await) };
        let issuance = issuance.clone();
        tasks.push(tokio::spawn(async move {
            let application = mi6(&format!("phone-{}", n / 2), &format!("F{n:08}"));
            issuance.request_card(&payments, &application, at(10, 0, 0), T0).await.expect("answered")
        }));
    }
    let mut free = std::collections::BTreeMap::new();
    let mut charged = std::collections::BTreeSet::new();
    for (n, task) in tasks.into_iter().enumerate() {
        match task.await.unwrap() {
            Issuance::Issued(card) => {
                let previous = free.insert(n / 2, card.card.card_id.clone());
                assert!(previous.is_none_or(|p| p == card.card.card_id), "one card per phone");
            }
            Issuance::PaymentRequired { .. } => {
                charged.insert(n / 2);
            }
        }
    }
    assert_eq!(free.len(), 3, "exactly the cap got free cards: {free:?}");
    assert!(charged.iter().all(|phone| !free.contains_key(phone)));
    let serials: std::collections::BTreeSet<_> = free.values().collect();
    assert_eq!(serials.len(), 3);
    assert_eq!(wallet.store().promotion_signups("beijing").await.unwrap()["mi-launch"], 3);
    assert_balanced(wallet.store()).await;
}

async fn phones_that_cannot_carry_a_card_are_refused_with_the_reason(db: &TestDb) {
    let wallet = Wallet::new(db.store.clone());
    let ask = |application| {
        let wallet = &wallet;
        async move { wallet.issuance.request_card(&wallet.payments, &application, at(10, 0, 0), T0).await }
    };
    let mut no_nfc = mi6("phone-X", "F00000001");
    no_nfc.phone.model = "Mi 5c".to_owned();
    match ask(no_nfc).await {
        Err(IssuanceError::NotEligible(reason)) => assert_eq!(reason, "the Xiaomi Mi 5c has no NFC"),
        other => panic!("expected NotEligible, got {other:?}"),
    }
    let mut nowhere = mi6("phone-X", "F00000001");
    nowhere.city = "atlantis".to_owned();
    assert!(matches!(ask(nowhere).await, Err(IssuanceError::UnknownCity(city)) if city == "atlantis"));
    // An NFC-SIM phone: through the carrier's hall and with the SIM's carrier, or not at all.
    let sim = |channel, carrier: Option<&str>| {
        let mut application = mi6("phone-S", "F00000002");
        application.phone =
            Phone { model: "Mi 4".to_owned(), carrier: carrier.map(str::to_owned), ..application.phone };
        application.channel = channel;
        application
    };
    let wrong_channel = ask(sim(Channel::MakerWallet, Some("China Mobile"))).await;
    assert!(matches!(wrong_channel, Err(IssuanceError::BadField { field: "channel", .. })), "{wrong_channel:?}");
    let no_carrier = ask(sim(Channel::CarrierHall, None)).await;
    assert!(matches!(no_carrier, Err(IssuanceError::BadField { field: "carrier", .. })), "{no_carrier:?}");
    let fine = ask(sim(Channel::CarrierHall, Some("China Mobile"))).await;
    assert!(matches!(fine, Ok(Issuance::PaymentRequired { .. })), "{fine:?}");
    let mut blank = mi6(" ", "F00000003");
    blank.phone.device_id = "\u{7}".to_owned();
    assert!(matches!(ask(blank).await, Err(IssuanceError::BadField { field: "device_id", .. })));
    // Nothing was issued, nothing charged.
    assert_eq!(wallet.store().balance(&Account::FeeRevenue).await.unwrap(), 0);
    assert_balanced(wallet.store()).await;
}

async fn a_paid_promotional_fee_whose_promotion_ran_out_is_refunded(db: &TestDb) {
    let mut wallet = Wallet::new(db.store.clone());
    // 9 yuan instead of 29 for the first one.
    let mut rules = free_for_xiaomi(1);
    let mut promotion = rules.promotions()[0].clone();
    promotion.fee_fen = 900;
    rules = PricingRules::new(2_900, vec![promotion]).unwrap();
    wallet.issuance.set_pricing("beijing", rules).unwrap();
    let (a, b) = (mi6("phone-A", "F0000000A"), mi6("phone-B", "F0000000B"));
    let mut orders = Vec::new();
    for application in [&a, &b] {
        match wallet.issuance.request_card(&wallet.payments, application, at(10, 0, 0), T0).await.unwrap() {
            Issuance::PaymentRequired { order, quote } => {
                assert_eq!((order.amount.get(), quote.promotion.as_deref()), (900, Some("mi-launch")));
                wallet.pay(&order.merchant_order_id, T0 + 1_000).await;
                orders.push(order.merchant_order_id);
            }
            other => panic!("expected a fee, got {other:?}"),
        }
    }
    let issued = wallet.issuance.request_card(&wallet.payments, &a, at(10, 1, 0), T0 + 60_000).await;
    assert!(matches!(issued, Ok(Issuance::Issued(card)) if card.card.fee.get() == 900));
    // B paid the promotional fee too, but the cap of one is spent: refunded, no card.
    let ran_out = wallet.issuance.request_card(&wallet.payments, &b, at(10, 1, 0), T0 + 60_000).await;
    assert!(matches!(&ran_out, Err(IssuanceError::PromotionEnded(id)) if id == "mi-launch"), "{ran_out:?}");
    assert_eq!(wallet.payments.order(&orders[1]).await.unwrap().state, OrderState::Refunded);
    assert_eq!(wallet.store().promotion_signups("beijing").await.unwrap()["mi-launch"], 1);
    assert_eq!(wallet.store().balance(&Account::FeeRevenue).await.unwrap(), -900);
    // Asked again with a new order: the standard fee.
    let again = wallet.issuance.request_card(&wallet.payments, &mi6("phone-B", "F0000000C"), at(10, 2, 0), T0).await;
    assert!(matches!(again, Ok(Issuance::PaymentRequired { order, .. }) if order.amount.get() == 2_900));
    assert_balanced(wallet.store()).await;
}

trait ParseCard {
    fn parse_card(&self) -> yitong_platform::ledger::CardId;
}

impl ParseCard for str {
    fn parse_card(&self) -> yitong_platform::ledger::CardId {
        yitong_platform::ledger::CardId::parse(self).expect("valid")
    }
}

on_both_backends! {
    fee_then_card => the_fee_is_paid_then_the_card_is_issued_once,
    promotion_cap => a_promotion_waives_the_fee_up_to_its_cap,
    racing_at_the_cap => racing_requests_at_the_cap_get_one_card_each_and_the_cap_holds,
    not_eligible => phones_that_cannot_carry_a_card_are_refused_with_the_reason,
    promotion_ran_out => a_paid_promotional_fee_whose_promotion_ran_out_is_refunded,
}
