//! Card closure, transfer and deletion end to end on SQLite and PostgreSQL, the test playing the
//! phones: a real in-process card for the old phone and for the new one. The old card ends empty
//! and blocked for good (a purchase then answers the blocked status), the new card holds the
//! balance, the ledger balances after each step; a phone vanishing mid-way is resumed from the
//! card's evidence; a forged DEBIT answer is refused; a closing card takes no top-up.

mod support;

use support::wallet::{at, closures, gate_purchase, loaded_card, pump, SecureElement, Wallet, T0};
use support::TestDb;
use yitong_platform::closure::{ClosureError, ClosureService, ClosureState, ClosureStep, DebitState, Purpose};
use yitong_platform::issuance::Phone;
use yitong_platform::ledger::{Account, CardId};
use yitong_platform::ota::TopUpError;
use yitong_platform::payments::OrderState;
use yitong_platform::pricing::{Channel, PricingRules};
use yitong_platform::store::Store;
use yitong_profile::apdu;

async fn assert_balanced(store: &Store) {
    let check = store.check_ledger().await.expect("checked");
    assert!(check.is_ok(), "{check}");
}

fn new_phone(device: &str) -> Phone {
    Phone {
        device_id: device.to_owned(),
        se_id: format!("SE-{device}"),
        maker: "Xiaomi".to_owned(),
        model: "Mi 6".to_owned(),
        carrier: None,
    }
}

/// A purchase on a blocked card: INITIALIZE answers the blocked status `6283`.
fn assert_blocked(se: &mut SecureElement) {
    let answer = se.send(&apdu::initialize_for_purchase(false, 1, [0x10, 0, 0, 1, 0, 1]));
    assert_eq!(answer, [0x62, 0x83], "a blocked card refuses a purchase");
}

async fn liability(store: &Store, card: &CardId) -> i64 {
    -store.balance(&Account::CardLiability(card.clone())).await.unwrap()
}

async fn a_transfer_moves_the_balance_to_the_new_phone(db: &TestDb) {
    let wallet = Wallet::new(db.store.clone());
    let service = closures(&wallet);
    let (card, mut se) = loaded_card(&wallet, "phone-A", 5_000).await;
    // A gate charged 300 fen the platform has not heard of yet.
    gate_purchase(&wallet, &mut se, &card, 300, 0);
    let step = service.start(&wallet.payments, &card, Purpose::Transfer, T0 + 50_000).await.unwrap();
    assert!(step.started);
    assert_eq!(step.command.as_deref(), Some(&apdu::get_balance()[..]));
    // A closing card takes no top-up.
    let order = wallet.paid_top_up("T-more", &card, 100, T0 + 51_000).await;
    let command = wallet.ota.initialize_command(&wallet.payments, &order).await.unwrap();
    let answer = se.send(&command);
    let refused = wallet.ota.authorize(&wallet.payments, &order, &answer, at(11, 0, 0), T0 + 52_000).await;
    assert!(matches!(refused, Err(TopUpError::CardClosed(_))), "{refused:?}");
    wallet.payments.refund(&order, T0 + 53_000).await.unwrap();

    let closed = pump(&service, &wallet, &mut se, step).await;
    assert_eq!((closed.state, closed.moved.get(), closed.unconfirmed.get()), (ClosureState::Closed, 4_700, 0));
    assert_eq!(se.balance_fen(), 0);
    assert_blocked(&mut se);
    let code = closed.transfer_code.clone().expect("a transfer code");
    assert_eq!(code.len(), 32);
    assert_eq!(liability(wallet.store(), &card).await, 0);
    assert_eq!(-wallet.store().balance(&Account::TransfersPayable).await.unwrap(), 4_700);
    // What the liability held beyond the card's proven balance was spent at the gate.
    assert_eq!(-wallet.store().balance(&Account::FaresUnsettled).await.unwrap(), 300);
    assert_balanced(wallet.store()).await;
    // The check ties `transfers_payable` to the unclaimed transfers: one altered behind the
    // store's back is found.
    db.execute("UPDATE card_transfers SET amount_fen = amount_fen + 1").await;
    let check = wallet.store().check_ledger().await.unwrap();
    let found: Vec<(&str, i64, i64)> =
        check.order_mismatches.iter().map(|m| (m.account.as_str(), m.expected_fen, m.ledger_fen)).collect();
    assert_eq!(found, [("transfers_payable", 4_701, 4_700)]);
    db.execute("UPDATE card_transfers SET amount_fen = amount_fen - 1").await;
    assert_balanced(wallet.store()).await;
    // The database keeps the code's SHA-256 only.
    let sha256 = |code: &str| hex::encode(<sha2::Sha256 as sha2::Digest>::digest(code.as_bytes()));
    assert_eq!(db.texts("SELECT code_sha256 FROM card_transfers").await, [sha256(&code)]);
    // Started again: the same outcome, nothing moved twice, and a fresh code that replaces the
    // first (which no longer claims anything).
    let again = service.start(&wallet.payments, &card, Purpose::Transfer, T0 + 70_000).await.unwrap();
    assert_eq!((again.started, again.moved.get(), again.command), (false, 4_700, None));
    let stale = code;
    let code = again.transfer_code.clone().expect("a fresh code");
    assert_ne!(code, stale);
    assert_eq!(db.texts("SELECT code_sha256 FROM card_transfers").await, [sha256(&code)]);
    let refused = service
        .claim_transfer(
            &wallet.payments,
            &stale,
            &new_phone("phone-B"),
            Channel::MakerWallet,
            at(12, 0, 0),
            T0 + 75_000,
        )
        .await;
    assert!(matches!(refused, Err(ClosureError::UnknownTransferCode)), "{refused:?}");
    assert_balanced(wallet.store()).await;

    // The old phone cannot claim its own code; a wrong code is unknown.
    let own = service
        .claim_transfer(&wallet.payments, &code, &new_phone("phone-A"), Channel::MakerWallet, at(12, 0, 0), T0 + 80_000)
        .await;
    assert!(matches!(own, Err(ClosureError::OwnTransfer)), "{own:?}");
    let wrong = service
        .claim_transfer(&wallet.payments, "00", &new_phone("phone-B"), Channel::MakerWallet, at(12, 0, 0), T0 + 80_000)
        .await;
    assert!(matches!(wrong, Err(ClosureError::UnknownTransferCode)), "{wrong:?}");

    let claim = service
        .claim_transfer(&wallet.payments, &code, &new_phone("phone-B"), Channel::MakerWallet, at(12, 0, 0), T0 + 80_000)
        .await
        .unwrap();
    assert_eq!(claim.card.card.fee.get(), 0, "a transfer is not a sign-up");
    let order = claim.load_order.clone().expect("a funded load order");
    assert_eq!((order.state, order.amount.get()), (OrderState::Paid, 4_700));
    assert_balanced(wallet.store()).await;
    // Repeated: the same card and order; another phone is refused.
    let repeated = service
        .claim_transfer(&wallet.payments, &code, &new_phone("phone-B"), Channel::MakerWallet, at(12, 0, 1), T0 + 81_000)
        .await
        .unwrap();
    assert_eq!(
        (repeated.card.card.card_id.clone(), repeated.load_order.clone()),
        (claim.card.card.card_id.clone(), Some(order.clone()))
    );
    let other = service
        .claim_transfer(&wallet.payments, &code, &new_phone("phone-C"), Channel::MakerWallet, at(12, 0, 2), T0 + 82_000)
        .await;
    assert!(matches!(other, Err(ClosureError::ClaimedByAnotherPhone)), "{other:?}");
    // Claimed: the old phone gets no code any more (none would claim anything).
    let after = service.start(&wallet.payments, &card, Purpose::Transfer, T0 + 83_000).await.unwrap();
    assert_eq!((after.state, after.transfer_code), (ClosureState::Closed, None));

    // The new phone loads it through the top-up flow.
    let mut new_se = SecureElement::new(&claim.card.image, 100);
    let answer = new_se.send(&claim.initialize_command.clone().unwrap());
    let id = order.merchant_order_id.clone();
    let auth = wallet.ota.authorize(&wallet.payments, &id, &answer, at(12, 1, 0), T0 + 90_000).await.unwrap();
    let credit = new_se.send(&auth.credit_command);
    let loaded = wallet.ota.complete(&wallet.payments, &id, &credit, T0 + 91_000).await.unwrap();
    assert_eq!(loaded.order.state, OrderState::Loaded);
    assert_eq!(new_se.balance_fen(), 4_700);
    assert_eq!(wallet.store().balance(&Account::TransfersPayable).await.unwrap(), 0);
    assert_eq!(liability(wallet.store(), &claim.card.card.card_id).await, 4_700);
    assert_balanced(wallet.store()).await;
    // Conserved: the rider paid 2,900 (fee) + 5,000 (top-up) + 100 (refunded); the provider holds
    // 7,900 = the fee earned + the new card's 4,700 + the gate's 300 + the old card's 0.
    let clearing = wallet.store().balance(&Account::provider_clearing("simulated").unwrap()).await.unwrap();
    let fee = -wallet.store().balance(&Account::FeeRevenue).await.unwrap();
    assert_eq!((clearing, fee), (7_900, 2_900));
    assert_eq!(clearing, fee + i64::from(new_se.balance_fen()) + 300 + i64::from(se.balance_fen()));
    // The old phone may enroll Beijing again: its closed card does not count.
    let fresh = wallet.issue("phone-A", "F-phone-A-2").await;
    assert_ne!(fresh.card.card_id, card);
}

async fn a_deletion_refunds_the_balance(db: &TestDb, fee_back: bool) {
    let mut wallet = Wallet::new(db.store.clone());
    let rules = PricingRules::new(2_900, vec![]).unwrap().with_fee_refund_within_days(fee_back.then_some(7));
    wallet.issuance.set_pricing("beijing", rules).unwrap();
    let service = closures(&wallet);
    let (card, mut se) = loaded_card(&wallet, "phone-A", 3_000).await;
    // A 200 fen purchase at a gate the platform has not heard of.
    gate_purchase(&wallet, &mut se, &card, 200, 0);
    let step = service.start(&wallet.payments, &card, Purpose::Delete, T0 + 50_000).await.unwrap();
    let closed = pump(&service, &wallet, &mut se, step).await;
    assert_eq!(closed.moved.get(), 2_800);
    assert_blocked(&mut se);
    let refund = closed.refund_order.clone().expect("a balance refund");
    assert_eq!((refund.state, refund.amount.get()), (OrderState::Refunded, 2_800));
    // Paid back as a partial refund of the card's top-up.
    let parts = wallet.store().refund_parts(&refund.merchant_order_id).await.unwrap();
    assert_eq!(
        parts.iter().map(|p| (p.paid_order_id.as_str(), p.amount.get(), p.refunded)).collect::<Vec<_>>(),
        [("T-phone-A", 2_800, true)]
    );
    // Conserved: paid 2,900 + 3,000; refunded 2,800 (+ 2,900 by the rule); the gate's 200 remain.
    let clearing = wallet.store().balance(&Account::provider_clearing("simulated").unwrap()).await.unwrap();
    assert_eq!(clearing, if fee_back { 200 } else { 2_900 + 200 });
    assert_eq!(closed.fee_refund_order.as_ref().map(|o| o.state), fee_back.then_some(OrderState::Refunded));
    assert_eq!(wallet.store().balance(&Account::RefundsPayable).await.unwrap(), 0);
    let purpose = service.start(&wallet.payments, &card, Purpose::Transfer, T0 + 70_000).await;
    assert!(matches!(purpose, Err(ClosureError::PurposeMismatch { .. })), "{purpose:?}");
    assert_balanced(wallet.store()).await;
}

async fn deletion_refunds_the_fee_by_the_rule(db: &TestDb) {
    a_deletion_refunds_the_balance(db, true).await;
}

async fn deletion_keeps_the_fee_by_default(db: &TestDb) {
    a_deletion_refunds_the_balance(db, false).await;
}

async fn an_empty_card_is_blocked_without_a_debit(db: &TestDb) {
    let wallet = Wallet::new(db.store.clone());
    let service = closures(&wallet);
    let issued = wallet.issue("phone-A", "F-phone-A").await;
    let mut se = SecureElement::new(&issued.image, 0);
    let step = service.start(&wallet.payments, &issued.card.card_id, Purpose::Delete, T0).await.unwrap();
    let closed = pump(&service, &wallet, &mut se, step).await;
    assert_eq!((closed.state, closed.moved.get(), closed.refund_order), (ClosureState::Closed, 0, None));
    assert!(wallet.store().closure_debits(&closed.closure_id).await.unwrap().is_empty());
    assert_blocked(&mut se);
    assert_balanced(wallet.store()).await;
}

/// Runs the closure to its DEBIT; returns the step handing it out.
async fn to_debit(service: &ClosureService, wallet: &Wallet, se: &mut SecureElement, card: &CardId) -> ClosureStep {
    let mut step = service.start(&wallet.payments, card, Purpose::Transfer, T0 + 50_000).await.unwrap();
    for n in 0..2 {
        let answer = se.send(&step.command.clone().unwrap());
        step = service.answer(&wallet.payments, &step.closure_id, &answer, at(11, 0, n), T0 + 60_000).await.unwrap();
    }
    assert_eq!(step.command.as_ref().map(|c| c[1]), Some(0x54), "DEBIT FOR PURCHASE: {step:?}");
    step
}

async fn a_vanished_phone_is_resumed_from_the_card(db: &TestDb) {
    let wallet = Wallet::new(db.store.clone());
    let service = closures(&wallet);
    // The card committed the debit, its answer lost: the proof recovers it.
    let (card, mut se) = loaded_card(&wallet, "phone-A", 2_000).await;
    let step = to_debit(&service, &wallet, &mut se, &card).await;
    // A forged answer (TAC flipped) is refused and changes nothing.
    let answer = se.send(&step.command.clone().unwrap());
    let mut forged = answer.clone();
    forged[0] ^= 1;
    let refused = service.answer(&wallet.payments, &step.closure_id, &forged, at(11, 1, 0), T0 + 61_000).await;
    assert!(matches!(refused, Err(ClosureError::Tac(_))), "{refused:?}");
    let resumed = service.start(&wallet.payments, &card, Purpose::Transfer, T0 + 62_000).await.unwrap();
    assert!(!resumed.started);
    assert_eq!(resumed.command.as_ref().map(|c| c[1]), Some(0x5A), "GET TRANSACTION PROVE");
    let closed = pump(&service, &wallet, &mut se, resumed).await;
    assert_eq!((closed.moved.get(), closed.unconfirmed.get()), (2_000, 0));
    let debits = wallet.store().closure_debits(&closed.closure_id).await.unwrap();
    assert_eq!(debits.iter().map(|d| d.state).collect::<Vec<_>>(), [DebitState::Recovered]);
    assert_balanced(wallet.store()).await;

    // The DEBIT never reached the card: the unchanged counter proves it, the next round moves it once.
    let (card, mut se) = loaded_card(&wallet, "phone-B", 1_500).await;
    let step = to_debit(&service, &wallet, &mut se, &card).await;
    drop(step);
    let resumed = service.start(&wallet.payments, &card, Purpose::Transfer, T0 + 62_000).await.unwrap();
    let closed = pump(&service, &wallet, &mut se, resumed).await;
    assert_eq!((closed.moved.get(), closed.unconfirmed.get()), (1_500, 0));
    let debits = wallet.store().closure_debits(&closed.closure_id).await.unwrap();
    assert_eq!(debits.iter().map(|d| d.state).collect::<Vec<_>>(), [DebitState::NotDebited, DebitState::Confirmed]);
    assert_eq!(se.balance_fen(), 0);
    assert_blocked(&mut se);
    assert_balanced(wallet.store()).await;

    // Vanished after INITIALIZE, and after GET CHALLENGE: resumed, moved once.
    let (card, mut se) = loaded_card(&wallet, "phone-C", 700).await;
    let step = service.start(&wallet.payments, &card, Purpose::Delete, T0 + 50_000).await.unwrap();
    let answer = se.send(&step.command.clone().unwrap());
    let step = service.answer(&wallet.payments, &step.closure_id, &answer, at(11, 0, 0), T0 + 60_000).await.unwrap();
    se.send(&step.command.clone().unwrap());
    let mut step = service.start(&wallet.payments, &card, Purpose::Delete, T0 + 61_000).await.unwrap();
    while step.command.as_ref().map(|c| c[1]) != Some(0x84) {
        let answer = se.send(&step.command.clone().unwrap());
        step = service.answer(&wallet.payments, &step.closure_id, &answer, at(11, 2, 0), T0 + 62_000).await.unwrap();
    }
    se.send(&step.command.clone().unwrap());
    let resumed = service.start(&wallet.payments, &card, Purpose::Delete, T0 + 63_000).await.unwrap();
    assert_eq!(resumed.command.as_deref(), Some(&apdu::get_challenge()[..]));
    let closed = pump(&service, &wallet, &mut se, resumed).await;
    assert_eq!(closed.moved.get(), 700);
    assert_blocked(&mut se);
    assert_balanced(wallet.store()).await;
}

async fn an_unprovable_debit_is_handed_on_unconfirmed(db: &TestDb) {
    let wallet = Wallet::new(db.store.clone());
    let service = closures(&wallet);
    let (card, mut se) = loaded_card(&wallet, "phone-A", 900).await;
    let step = to_debit(&service, &wallet, &mut se, &card).await;
    // The card commits, the answer is lost; then ten 0-fen gate taps replace the proof and
    // scroll the log past the debit.
    se.ok(&step.command.clone().unwrap());
    for n in 0..10 {
        gate_purchase(&wallet, &mut se, &card, 0, n);
    }
    let resumed = service.start(&wallet.payments, &card, Purpose::Transfer, T0 + 62_000).await.unwrap();
    let closed = pump(&service, &wallet, &mut se, resumed).await;
    // Nothing proves the 900 fen left the card for us: not moved, handed on.
    assert_eq!((closed.moved.get(), closed.unconfirmed.get()), (0, 900));
    let debits = wallet.store().closure_debits(&closed.closure_id).await.unwrap();
    assert_eq!(debits.iter().map(|d| d.state).collect::<Vec<_>>(), [DebitState::Unconfirmed]);
    assert_eq!(-wallet.store().balance(&Account::FaresUnsettled).await.unwrap(), 900);
    let code = closed.transfer_code.unwrap();
    let claim = service
        .claim_transfer(&wallet.payments, &code, &new_phone("phone-B"), Channel::MakerWallet, at(12, 0, 0), T0 + 80_000)
        .await
        .unwrap();
    assert_eq!((claim.load_order, claim.initialize_command), (None, None), "nothing to load");
    assert_balanced(wallet.store()).await;
}

async fn a_debit_whose_proof_was_replaced_is_found_in_the_log(db: &TestDb) {
    let wallet = Wallet::new(db.store.clone());
    let service = closures(&wallet);
    let (card, mut se) = loaded_card(&wallet, "phone-A", 600).await;
    let step = to_debit(&service, &wallet, &mut se, &card).await;
    se.ok(&step.command.clone().unwrap());
    // One 0-fen gate tap replaces the purchase proof; EF18 still holds our debit (record 2).
    gate_purchase(&wallet, &mut se, &card, 0, 0);
    let resumed = service.start(&wallet.payments, &card, Purpose::Transfer, T0 + 62_000).await.unwrap();
    let closed = pump(&service, &wallet, &mut se, resumed).await;
    assert_eq!((closed.moved.get(), closed.unconfirmed.get()), (600, 0));
    let debits = wallet.store().closure_debits(&closed.closure_id).await.unwrap();
    assert_eq!(debits.iter().map(|d| (d.state, d.record.tac)).collect::<Vec<_>>(), [(DebitState::Recovered, None)]);
    assert_balanced(wallet.store()).await;
}

async fn racing_claims_bind_one_phone(db: &TestDb) {
    let wallet = Wallet::new(db.store.clone());
    let service = closures(&wallet);
    let (card, mut se) = loaded_card(&wallet, "phone-A", 1_000).await;
    let step = service.start(&wallet.payments, &card, Purpose::Transfer, T0 + 50_000).await.unwrap();
    let code = pump(&service, &wallet, &mut se, step).await.transfer_code.unwrap();
    let other = wallet.other_pool(db.open_again().await);
    let (b, c) = (new_phone("phone-B"), new_phone("phone-C"));
    let (first, second) = tokio::join!(
        service.claim_transfer(&wallet.payments, &code, &b, Channel::MakerWallet, at(12, 0, 0), T0 + 80_000),
        service.claim_transfer(&other, &code, &c, Channel::MakerWallet, at(12, 0, 0), T0 + 80_000),
    );
    let won: Vec<_> = [first, second].into_iter().filter_map(Result::ok).collect();
    assert_eq!(won.len(), 1, "one phone gets the balance");
    assert_eq!(won[0].load_order.as_ref().map(|o| o.amount.get()), Some(1_000));
    assert_balanced(wallet.store()).await;
}

async fn a_phone_that_cannot_take_the_card_leaves_the_transfer_to_another(db: &TestDb) {
    let wallet = Wallet::new(db.store.clone());
    let service = closures(&wallet);
    let (card, mut se) = loaded_card(&wallet, "phone-A", 1_000).await;
    let step = service.start(&wallet.payments, &card, Purpose::Transfer, T0 + 50_000).await.unwrap();
    let code = pump(&service, &wallet, &mut se, step).await.transfer_code.unwrap();
    // A Mi 5c has no NFC: refused, and the transfer stays unclaimed.
    let no_nfc = Phone { model: "Mi 5c".to_owned(), ..new_phone("phone-B") };
    let refused =
        service.claim_transfer(&wallet.payments, &code, &no_nfc, Channel::MakerWallet, at(12, 0, 0), T0 + 80_000).await;
    assert!(matches!(refused, Err(ClosureError::Issuance(_))), "{refused:?}");
    // A phone with a Beijing card of its own: refused too, the transfer still free.
    let holder = wallet.issue("phone-C", "F-phone-C").await;
    let has_card = service
        .claim_transfer(&wallet.payments, &code, &new_phone("phone-C"), Channel::MakerWallet, at(12, 0, 1), T0 + 81_000)
        .await;
    assert!(matches!(has_card, Err(ClosureError::PhoneHasCard(ref c)) if *c == holder.card.card_id), "{has_card:?}");
    let claim = service
        .claim_transfer(&wallet.payments, &code, &new_phone("phone-D"), Channel::MakerWallet, at(12, 0, 2), T0 + 82_000)
        .await
        .expect("the rider's eligible phone claims it");
    assert_eq!(claim.load_order.as_ref().map(|o| o.amount.get()), Some(1_000));
    // The load order's ID does not tell the new phone the old card's serial.
    let order_id = claim.load_order.as_ref().unwrap().merchant_order_id.clone();
    assert!(!order_id.as_str().contains(card.as_str()), "{order_id}");
    assert_balanced(wallet.store()).await;
    // Had a crash left it `created` (bound, not yet funded), the late-order sweep would not ask
    // the provider about it, nor close it: the transfer's money is not the provider's.
    db.execute("UPDATE payment_orders SET state = 'created' WHERE kind = 'transfer'").await;
    let day_later = T0 + 86_400_000;
    assert_eq!(wallet.payments.reconcile_waiting(day_later, 100).await.unwrap(), []);
    assert_eq!(wallet.payments.reconcile(&order_id, day_later).await.unwrap().state, OrderState::Created);
}

async fn racing_starts_open_one_closure(db: &TestDb) {
    let wallet = Wallet::new(db.store.clone());
    let (card, _se) = loaded_card(&wallet, "phone-A", 1_000).await;
    let other = wallet.other_pool(db.open_again().await);
    let service = std::sync::Arc::new(closures(&wallet));
    let (a, b) = tokio::join!(
        service.start(&wallet.payments, &card, Purpose::Transfer, T0),
        service.start(&other, &card, Purpose::Transfer, T0),
    );
    let started = [a, b].into_iter().filter_map(|r| r.ok()).filter(|s| s.started).count();
    assert_eq!(started, 1, "exactly one start begins the closure");
}

on_both_backends! {
    transfer_end_to_end => a_transfer_moves_the_balance_to_the_new_phone,
    deletion_fee_refunded => deletion_refunds_the_fee_by_the_rule,
    deletion_fee_kept => deletion_keeps_the_fee_by_default,
    empty_card => an_empty_card_is_blocked_without_a_debit,
    vanished_phone => a_vanished_phone_is_resumed_from_the_card,
    racing_starts => racing_starts_open_one_closure,
    unconfirmed_debit => an_unprovable_debit_is_handed_on_unconfirmed,
    racing_claims => racing_claims_bind_one_phone,
    ineligible_claim => a_phone_that_cannot_take_the_card_leaves_the_transfer_to_another,
    debit_in_the_log => a_debit_whose_proof_was_replaced_is_found_in_the_log,
}
