//! Over-the-air top-up end to end on SQLite and PostgreSQL, the test playing the phone: it
//! carries the platform's commands to a real in-process card (`yitong-card` on a `MemStore`)
//! and the card's answers back. A full load; a phone that vanishes between MAC2 and TAC,
//! reconciled both ways (loaded → recovered; not loaded → loaded again, or refunded) and the
//! unknown case; racing requests on one card (never a double load) — the ledger checked after each.

mod support;

use std::sync::Arc;

use support::wallet::{at, beijing_keys, SecureElement, Wallet, T0};
use support::TestDb;
use yitong_platform::ledger::{Account, CardId};
use yitong_platform::ota::{CardEvidence, LoadState, Reconciled, TopUpError, WhenNotLoaded};
use yitong_platform::payments::{MerchantOrderId, OrderState};
use yitong_platform::store::Store;
use yitong_profile::apdu::{self, LoadInit};
use yitong_record::RecordStatus;
use yitong_terminal::{LoadKeyHolder, LoadRequest, SoftwareLoadHost};

async fn assert_balanced(store: &Store) {
    let check = store.check_ledger().await.expect("checked");
    assert!(check.is_ok(), "{check}");
}

/// A Beijing card issued for free (promotion-less city fee paid) and its secure element.
async fn card(wallet: &Wallet, device: &str, rng_start: u32) -> (CardId, SecureElement) {
    let issued = wallet.issue(device, &format!("F-{device}")).await;
    (issued.card.card_id.clone(), SecureElement::new(&issued.image, rng_start))
}

/// The phone: asks for INITIALIZE FOR LOAD, sends it, returns the card's whole answer.
async fn initialize(wallet: &Wallet, se: &mut SecureElement, order: &MerchantOrderId) -> Vec<u8> {
    let command = wallet.ota.initialize_command(&wallet.payments, order).await.expect("a command");
    se.send(&command)
}

/// Everything the phone can gather about a load in doubt.
async fn evidence(wallet: &Wallet, se: &mut SecureElement, order: &MerchantOrderId) -> CardEvidence {
    let (prove, log) = wallet.ota.evidence_commands(&wallet.payments, order).await.expect("commands");
    let prove = se.send(&prove);
    let log = log.iter().map(|command| se.send(command)).take_while(|answer| answer.ends_with(&[0x90, 0x00])).collect();
    CardEvidence { prove: Some(prove), log, initialize: Some(initialize(wallet, se, order).await) }
}

async fn card_liability(store: &Store, card: &CardId) -> i64 {
    -store.balance(&Account::CardLiability(card.clone())).await.expect("balance")
}

async fn a_full_top_up_loads_the_card_once(db: &TestDb) {
    let wallet = Wallet::new(db.store.clone());
    let (card, mut se) = card(&wallet, "phone-A", 0).await;
    let order = wallet.paid_top_up("T00000001", &card, 5_000, T0).await;

    // INITIALIZE FOR LOAD: key index 01, 5,000 fen, terminal 1000 FFFF 0002 (Beijing, over the air).
    let command = wallet.ota.initialize_command(&wallet.payments, &order).await.unwrap();
    assert_eq!(hex::encode_upper(&command), "805000020B01000013881000FFFF000210");
    let answer = se.send(&command);
    let init = LoadInit::decode(&answer[..16]).unwrap();
    assert_eq!((init.balance_fen, init.online_counter), (0, 0));

    let authorization =
        wallet.ota.authorize(&wallet.payments, &order, &answer, at(10, 30, 0), T0 + 10_000).await.unwrap();
    assert_eq!(authorization.tap_id, "1000FFFF0002-1");
    // CREDIT FOR LOAD: date, time, MAC2.
    assert_eq!(
        hex::encode_upper(&authorization.credit_command),
        format!("805200000B20261125103000{}04", hex::encode_upper(authorization.mac2))
    );
    assert_eq!(wallet.payments.order(&order).await.unwrap().state, OrderState::Loading);
    // A repeated step 2 with the same answer hands out the same MAC2, nothing new.
    let again = wallet.ota.authorize(&wallet.payments, &order, &answer, at(10, 30, 2), T0 + 12_000).await.unwrap();
    assert_eq!(again, authorization);
    assert_balanced(wallet.store()).await;

    let credit = se.send(&authorization.credit_command);
    assert_eq!(credit.len(), 6, "TAC and 9000");
    // A TAC with one bit flipped proves nothing and changes nothing.
    let mut forged = credit.clone();
    forged[0] ^= 1;
    let refused = wallet.ota.complete(&wallet.payments, &order, &forged, T0 + 20_000).await;
    assert!(matches!(refused, Err(TopUpError::Tac(_))), "{refused:?}");
    assert_eq!(wallet.payments.order(&order).await.unwrap().state, OrderState::Loading);

    let loaded = wallet.ota.complete(&wallet.payments, &order, &credit, T0 + 20_000).await.unwrap();
    assert_eq!(loaded.order.state, OrderState::Loaded);
    assert_eq!(loaded.record.status, RecordStatus::Confirmed);
    assert_eq!(loaded.record.tac.map(hex::encode_upper), Some(hex::encode_upper(&credit[..4])));
    assert_eq!((loaded.record.counter, loaded.record.balance_after_fen), (1, 5_000));
    assert_eq!(se.balance_fen(), 5_000);
    // Repeated: the same, no second posting.
    let repeated = wallet.ota.complete(&wallet.payments, &order, &credit, T0 + 21_000).await.unwrap();
    assert_eq!(repeated.order, loaded.order);
    assert_eq!(card_liability(wallet.store(), &card).await, 5_000);
    assert_eq!(wallet.store().card_balance(&card).await.unwrap().map(|b| b.get()), Some(5_000));
    // The paid order cannot load again.
    let answer = initialize(&wallet, &mut se, &order).await;
    let twice = wallet.ota.authorize(&wallet.payments, &order, &answer, at(10, 31, 0), T0 + 30_000).await;
    assert!(matches!(twice, Err(TopUpError::AlreadyLoaded(_))), "{twice:?}");
    let loads = wallet.store().ota_loads(&order).await.unwrap();
    assert_eq!(loads.iter().map(|l| l.state).collect::<Vec<_>>(), [LoadState::Confirmed]);
    assert_balanced(wallet.store()).await;
}

async fn a_vanished_phone_whose_card_loaded_is_recovered(db: &TestDb) {
    let wallet = Wallet::new(db.store.clone());
    let (card, mut se) = card(&wallet, "phone-A", 0).await;
    for (n, use_proof) in [(1, true), (2, false)] {
        let order = wallet.paid_top_up(&format!("T0000000{n}"), &card, 2_000, T0).await;
        let answer = initialize(&wallet, &mut se, &order).await;
        let authorization =
            wallet.ota.authorize(&wallet.payments, &order, &answer, at(10, n, 0), T0 + 10_000).await.unwrap();
        // The card commits; its answer never reaches the platform.
        se.ok(&authorization.credit_command);
        // Another top-up of the card waits for the doubt.
        let other = wallet.paid_top_up(&format!("U0000000{n}"), &card, 100, T0).await;
        let answer = initialize(&wallet, &mut se, &other).await;
        let refused = wallet.ota.authorize(&wallet.payments, &other, &answer, at(10, n, 30), T0 + 11_000).await;
        assert!(matches!(refused, Err(TopUpError::LoadInDoubt { .. })), "{refused:?}");
        // At the phone's next contact the service finds the card's doubt and asks for evidence.
        let doubt = wallet.store().ota_load_in_doubt(&card).await.unwrap().expect("in doubt");
        assert_eq!((doubt.merchant_order_id, doubt.state), (order.clone(), LoadState::InDoubt));
        let mut gathered = evidence(&wallet, &mut se, &order).await;
        if !use_proof {
            gathered.prove = None; // the log alone shows the load
        }
        let reconciled = wallet
            .ota
            .reconcile(&wallet.payments, &order, &gathered, WhenNotLoaded::Refund, at(11, 0, 0), T0 + 60_000)
            .await
            .unwrap();
        let Reconciled::Loaded { record, order: settled } = reconciled else { panic!("expected Loaded") };
        assert_eq!(record.status, RecordStatus::Recovered);
        assert_eq!(record.tac.is_some(), use_proof, "the proof's TAC, verified; the log has none");
        assert_eq!(settled.state, OrderState::Loaded);
        wallet.payments.refund(&other, T0 + 61_000).await.unwrap();
    }
    assert_eq!(se.balance_fen(), 4_000);
    assert_eq!(card_liability(wallet.store(), &card).await, 4_000);
    assert_balanced(wallet.store()).await;
}

async fn a_vanished_phone_whose_card_did_not_load_is_loaded_again_or_refunded(db: &TestDb) {
    let wallet = Wallet::new(db.store.clone());
    let (card, mut se) = card(&wallet, "phone-A", 0).await;
    // 1: loaded again in a fresh session.
    let order = wallet.paid_top_up("T00000001", &card, 3_000, T0).await;
    let answer = initialize(&wallet, &mut se, &order).await;
    wallet.ota.authorize(&wallet.payments, &order, &answer, at(10, 0, 0), T0 + 10_000).await.unwrap();
    // The phone vanished before CREDIT. Its word alone proves nothing:
    let mut gathered = evidence(&wallet, &mut se, &order).await;
    let no_init = CardEvidence { initialize: None, ..gathered.clone() };
    let refused =
        wallet.ota.reconcile(&wallet.payments, &order, &no_init, WhenNotLoaded::Refund, at(11, 0, 0), T0).await;
    assert!(matches!(refused, Err(TopUpError::EvidenceIncomplete(_))), "{refused:?}");
    let mut forged = gathered.clone();
    forged.initialize.as_mut().unwrap()[12] ^= 1; // MAC1
    let refused =
        wallet.ota.reconcile(&wallet.payments, &order, &forged, WhenNotLoaded::Refund, at(11, 0, 0), T0).await;
    assert!(matches!(refused, Err(TopUpError::EvidenceIncomplete(_))), "{refused:?}");
    gathered.prove = None;
    let reconciled = wallet
        .ota
        .reconcile(&wallet.payments, &order, &gathered, WhenNotLoaded::LoadAgain, at(11, 0, 0), T0 + 60_000)
        .await
        .unwrap();
    let Reconciled::LoadAgain(authorization) = reconciled else { panic!("expected LoadAgain, got {reconciled:?}") };
    assert_eq!(authorization.tap_id, "1000FFFF0002-2");
    let credit = se.send(&authorization.credit_command);
    let loaded = wallet.ota.complete(&wallet.payments, &order, &credit, T0 + 61_000).await.unwrap();
    assert_eq!(loaded.order.state, OrderState::Loaded);
    let states: Vec<_> = wallet.store().ota_loads(&order).await.unwrap().iter().map(|l| l.state).collect();
    assert_eq!(states, [LoadState::NotLoaded, LoadState::Confirmed]);
    assert_eq!(se.balance_fen(), 3_000, "loaded once");

    // 2: refunded.
    let order = wallet.paid_top_up("T00000002", &card, 1_000, T0 + 100_000).await;
    let answer = initialize(&wallet, &mut se, &order).await;
    wallet.ota.authorize(&wallet.payments, &order, &answer, at(12, 0, 0), T0 + 110_000).await.unwrap();
    let gathered = evidence(&wallet, &mut se, &order).await;
    let reconciled = wallet
        .ota
        .reconcile(&wallet.payments, &order, &gathered, WhenNotLoaded::Refund, at(13, 0, 0), T0 + 160_000)
        .await
        .unwrap();
    let Reconciled::Refunded(refunded) = reconciled else { panic!("expected Refunded, got {reconciled:?}") };
    assert_eq!(refunded.state, OrderState::Refunded);
    assert_eq!(se.balance_fen(), 3_000);
    assert_eq!(card_liability(wallet.store(), &card).await, 3_000);
    assert_eq!(wallet.store().balance(&Account::PaymentsUnapplied).await.unwrap(), 0);
    assert_balanced(wallet.store()).await;
}

async fn a_card_that_can_no_longer_tell_leaves_the_load_unconfirmed(db: &TestDb) {
    let wallet = Wallet::new(db.store.clone());
    let (card, mut se) = card(&wallet, "phone-A", 0).await;
    let order = wallet.paid_top_up("T00000001", &card, 2_500, T0).await;
    let answer = initialize(&wallet, &mut se, &order).await;
    wallet.ota.authorize(&wallet.payments, &order, &answer, at(10, 0, 0), T0 + 10_000).await.unwrap();
    // Our CREDIT never reached the card; a station machine (another terminal) loads it meanwhile
    // and takes the online counter.
    let station = [0x10, 0x00, 0xFF, 0xFF, 0x00, 0x01];
    let init = LoadInit::decode(&se.ok(&apdu::initialize_for_load(700, station))).unwrap();
    let mut host = SoftwareLoadHost::new();
    host.add_issuer([0, 0, 0x10, 0, 0, 0, 0, 1], beijing_keys());
    let serial: [u8; 10] = hex::decode(card.as_str()).unwrap().try_into().unwrap();
    let mac2 = host
        .authorize_load(&LoadRequest {
            issuer_id: [0, 0, 0x10, 0, 0, 0, 0, 1],
            asn8: serial[2..].try_into().unwrap(),
            card_random: init.card_random,
            online_counter: init.online_counter,
            balance_before_fen: init.balance_fen,
            amount_fen: 700,
            terminal_id: station,
            at: at(10, 5, 0),
            key_version: init.key_version,
            algorithm_id: init.algorithm_id,
            mac1: init.mac1,
        })
        .unwrap();
    se.ok(&apdu::credit_for_load(at(10, 5, 0).date_bcd(), at(10, 5, 0).time_bcd(), mac2));
    // The counter moved and nothing on the card shows our load: neither loaded nor refunded.
    let gathered = evidence(&wallet, &mut se, &order).await;
    let reconciled = wallet
        .ota
        .reconcile(&wallet.payments, &order, &gathered, WhenNotLoaded::Refund, at(11, 0, 0), T0 + 60_000)
        .await
        .unwrap();
    let Reconciled::Unconfirmed(record) = reconciled else { panic!("expected Unconfirmed, got {reconciled:?}") };
    assert_eq!(record.status, RecordStatus::Unconfirmed);
    assert_eq!(wallet.payments.order(&order).await.unwrap().state, OrderState::Loading);
    let unconfirmed = wallet.store().ota_loads_in_state(LoadState::Unconfirmed, 10).await.unwrap();
    assert_eq!(unconfirmed.len(), 1);
    // The money stays owed (payments unapplied), visible to the ledger check.
    assert_eq!(wallet.store().balance(&Account::PaymentsUnapplied).await.unwrap(), -2_500);
    assert_balanced(wallet.store()).await;
    // The card is free for new loads.
    let next = wallet.paid_top_up("T00000002", &card, 100, T0 + 100_000).await;
    let answer = initialize(&wallet, &mut se, &next).await;
    let authorization =
        wallet.ota.authorize(&wallet.payments, &next, &answer, at(12, 0, 0), T0 + 100_000).await.unwrap();
    let credit = se.send(&authorization.credit_command);
    wallet.ota.complete(&wallet.payments, &next, &credit, T0 + 101_000).await.unwrap();
    assert_eq!(se.balance_fen(), 800);
}

async fn racing_top_ups_of_one_card_never_load_twice(db: &TestDb) {
    let wallet = Wallet::new(db.store.clone());
    let (card, mut se) = card(&wallet, "phone-A", 0).await;
    let first = wallet.paid_top_up("T00000001", &card, 1_000, T0).await;
    let second = wallet.paid_top_up("T00000002", &card, 2_000, T0).await;
    let answer_first = initialize(&wallet, &mut se, &first).await;
    let answer_second = initialize(&wallet, &mut se, &second).await;
    // Eight requests at once over two pools: each order's step 2, repeated four times.
    let mut tasks = Vec::new();
    for n in 0..8 {
        let payments = if n % 2 == 0 { wallet.payments.clone() } else { wallet.other_pool(db.open_again().await) };
        let ota = Arc::clone(&wallet.ota);
        let (order, answer) =
            if n < 4 { (first.clone(), answer_first.clone()) } else { (second.clone(), answer_second.clone()) };
        tasks.push(tokio::spawn(async move {
            (order.clone(), ota.authorize(&payments, &order, &answer, at(10, 0, 0), T0 + 10_000).await)
        }));
    }
    let mut winners = std::collections::BTreeSet::new();
    for task in tasks {
        match task.await.unwrap() {
            (order, Ok(_)) => {
                winners.insert(order);
            }
            (_, Err(TopUpError::LoadInDoubt { .. })) => {}
            (_, Err(error)) => panic!("unexpected {error}"),
        }
    }
    assert_eq!(winners.len(), 1, "one order holds the card's one doubt: {winners:?}");
    let winner = winners.pop_first().unwrap();
    let loser = if winner == first { second.clone() } else { first.clone() };
    // The card's session is the second INITIALIZE's: settle the winner from the card, then load
    // the other; each exactly once, completions racing.
    let gathered = evidence(&wallet, &mut se, &winner).await;
    let reconciled = wallet
        .ota
        .reconcile(&wallet.payments, &winner, &gathered, WhenNotLoaded::LoadAgain, at(10, 1, 0), T0 + 20_000)
        .await
        .unwrap();
    let Reconciled::LoadAgain(authorization) = reconciled else { panic!("expected LoadAgain, got {reconciled:?}") };
    let credit = se.send(&authorization.credit_command);
    let mut tasks = Vec::new();
    for n in 0..6 {
        let payments = if n % 2 == 0 { wallet.payments.clone() } else { wallet.other_pool(db.open_again().await) };
        let (ota, order, credit) = (Arc::clone(&wallet.ota), winner.clone(), credit.clone());
        tasks.push(tokio::spawn(async move { ota.complete(&payments, &order, &credit, T0 + 21_000).await }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap().expect("completed").order.state, OrderState::Loaded);
    }
    let answer = initialize(&wallet, &mut se, &loser).await;
    let authorization =
        wallet.ota.authorize(&wallet.payments, &loser, &answer, at(10, 2, 0), T0 + 30_000).await.unwrap();
    let credit = se.send(&authorization.credit_command);
    wallet.ota.complete(&wallet.payments, &loser, &credit, T0 + 31_000).await.unwrap();
    assert_eq!(se.balance_fen(), 3_000);
    assert_eq!(card_liability(wallet.store(), &card).await, 3_000);
    assert_eq!(wallet.store().card_balance(&card).await.unwrap().map(|b| b.get()), Some(3_000));
    assert_balanced(wallet.store()).await;
}

/// `authorize_for` and `complete_for` take the order as the caller read it (the HTTP handlers
/// read it to check the phone owns it); a read the order moved past since is not trusted: a
/// refunded order is not loaded, and a load completes, once, whatever state was read.
async fn an_order_read_before_it_moved_is_read_again(db: &TestDb) {
    let wallet = Wallet::new(db.store.clone());
    let (card, mut se) = card(&wallet, "phone-A", 0).await;

    // Read paid, then refunded: the authorization is refused and nothing is written.
    let refunded = wallet.paid_top_up("T00000001", &card, 1_000, T0).await;
    let stale = wallet.ota.order_with_card(&wallet.payments, &refunded).await.unwrap();
    assert_eq!(stale.order.state, OrderState::Paid);
    wallet.payments.refund(&refunded, T0 + 1_000).await.unwrap();
    let answer = initialize(&wallet, &mut se, &refunded).await;
    let refused = wallet.ota.authorize_for(&wallet.payments, stale, &answer, at(10, 0, 0), T0 + 2_000).await;
    assert!(
        matches!(refused, Err(TopUpError::NotPayable { state: OrderState::RefundPending | OrderState::Refunded, .. })),
        "{refused:?}"
    );
    assert!(wallet.store().ota_loads(&refunded).await.unwrap().is_empty());

    // Read paid, authorized since (loading): the completion with that read loads it once.
    let order = wallet.paid_top_up("T00000002", &card, 2_000, T0).await;
    let read_paid = wallet.ota.order_with_card(&wallet.payments, &order).await.unwrap();
    let answer = initialize(&wallet, &mut se, &order).await;
    let authorization =
        wallet.ota.authorize(&wallet.payments, &order, &answer, at(10, 1, 0), T0 + 10_000).await.unwrap();
    let credit = se.send(&authorization.credit_command);
    let loaded = wallet.ota.complete_for(&wallet.payments, read_paid, &credit, T0 + 11_000).await.unwrap();
    assert_eq!(loaded.order.state, OrderState::Loaded);
    assert_eq!(
        wallet.payments.history(&order).await.unwrap(),
        [OrderState::Paid, OrderState::Loading, OrderState::Loaded]
    );
    assert_eq!(se.balance_fen(), 2_000);
    assert_eq!(card_liability(wallet.store(), &card).await, 2_000);
    assert_balanced(wallet.store()).await;
}

on_both_backends! {
    full_top_up => a_full_top_up_loads_the_card_once,
    vanished_loaded => a_vanished_phone_whose_card_loaded_is_recovered,
    vanished_not_loaded => a_vanished_phone_whose_card_did_not_load_is_loaded_again_or_refunded,
    vanished_unknown => a_card_that_can_no_longer_tell_leaves_the_load_unconfirmed,
    racing => racing_top_ups_of_one_card_never_load_twice,
    read_before_moved => an_order_read_before_it_moved_is_read_again,
}
