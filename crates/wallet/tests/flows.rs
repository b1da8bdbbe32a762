//! The phone's flows end to end: the wallet SDK over HTTP against the real service on a local
//! port, the phone's SE a real card made from the issued image, on SQLite and PostgreSQL. The
//! card checks the service's MAC2 and makes the TAC the service verifies, so a balance the SE
//! reports is money that really moved; the ledger is checked after each flow.

mod support;

use support::{gate_tap, se_balance, service_code, Service};
use yitong_terminal::{Refusal, TapResult};
use yitong_wallet::{Closed, InFlight, Tear, TopUpStep, WalletError};

both_backends!(
    enroll_and_two_top_ups,
    a_top_up_torn_after_credit_committed_is_found_loaded,
    a_top_up_torn_before_credit_is_loaded_again_once,
    a_top_up_stopped_before_authorize_is_loaded_if_paid_and_dropped_if_not,
    another_phones_token_is_refused,
    transfer_moves_the_balance_and_blocks_the_old_card,
    delete_refunds_the_balance,
    a_delete_torn_after_debit_is_resumed_by_the_next_command,
    a_transfer_torn_before_debit_is_resumed_by_running_it_again,
);

fn enroll_and_two_top_ups(s: &Service) {
    let phone = s.phone("a", "Mi 6");
    let enrolled = s.with(&phone, |w| w.enroll("beijing", None)).expect("enrolled");
    assert_eq!((enrolled.channel.as_str(), enrolled.fee_fen, enrolled.existing), ("maker-wallet", 2_900, false));
    assert_eq!(se_balance(&phone, "beijing"), 0);
    // Enrolling again charges nothing and keeps the card.
    let again = s.with(&phone, |w| w.enroll("beijing", None)).expect("enrolled");
    assert_eq!((again.serial.as_str(), again.existing), (enrolled.serial.as_str(), true));

    let first = s.with(&phone, |w| w.top_up("beijing", 5_000, None)).expect("loaded");
    assert_eq!(first.balance_after_fen, 5_000);
    let second = s.with(&phone, |w| w.top_up("beijing", 1_234, None)).expect("loaded");
    assert_eq!(second.balance_after_fen, 6_234);
    assert_ne!(first.order_id, second.order_id);
    // The card itself holds the money; the service's view agrees, with the fee and both loads.
    assert_eq!(se_balance(&phone, "beijing"), 6_234);
    let report = s.with(&phone, |w| w.show(false)).expect("shown");
    let view = &report.service.expect("the service answers").cards[0];
    assert_eq!((view.card.serial.as_str(), view.balance_fen), (enrolled.serial.as_str(), 6_234));
    let mut kinds: Vec<_> = view.history.iter().map(|h| (h.kind.as_str(), h.amount_fen, h.state.as_str())).collect();
    kinds.sort();
    assert_eq!(kinds, [("fee", 2_900, "issued"), ("load", 1_234, "loaded"), ("load", 5_000, "loaded")]);
    assert_eq!(report.cards[0].card.log.len(), 2, "two loads in EF18");
    assert!(report.in_flight.is_empty());
    s.assert_ledger_balanced();
}

/// The CREDIT reached the card and it committed, but its answer (the TAC) was lost: the next
/// command finds the load on the card (its proof) and never loads it again.
fn a_top_up_torn_after_credit_committed_is_found_loaded(s: &Service) {
    let phone = s.phone("a", "Mi 6");
    s.with(&phone, |w| w.enroll("beijing", None)).expect("enrolled");
    s.with(&phone, |w| w.top_up("beijing", 2_000, None)).expect("loaded");
    let torn = s.with(&phone, |w| w.top_up("beijing", 3_000, Some(Tear::MoneyAnswerLost)));
    assert!(matches!(torn, Err(WalletError::Interrupted { .. })), "{torn:?}");
    // The card committed: its memory was kept.
    assert_eq!(se_balance(&phone, "beijing"), 5_000);
    let in_flight = yitong_wallet::phone::read(&phone).expect("reads").in_flight;
    let Some(InFlight::TopUp { order_id, step: TopUpStep::CreditSent, .. }) = in_flight.get("beijing").cloned() else {
        panic!("the top-up is in flight after CREDIT: {in_flight:?}");
    };

    // The next command (a show) reconciles first: loaded, from the card's evidence.
    let report = s.with(&phone, |w| w.show(false)).expect("shown");
    assert_eq!(report.recovered.len(), 1, "{:?}", report.recovered);
    let recovered = &report.recovered[0];
    assert_eq!((recovered.id.as_str(), recovered.outcome.as_str()), (order_id.as_str(), "loaded"));
    assert!(report.in_flight.is_empty());
    assert_eq!(report.cards[0].card.balance_fen, 5_000, "loaded once");
    let view = &report.service.expect("the service answers").cards[0];
    assert_eq!(view.balance_fen, 5_000);
    let order = view.history.iter().find(|h| h.order_id.as_deref() == Some(&order_id)).expect("the order");
    assert_eq!(order.state, "loaded");

    // A further top-up is an ordinary one.
    let next = s.with(&phone, |w| w.top_up("beijing", 100, None)).expect("loaded");
    assert_eq!((next.balance_after_fen, next.recovered.len()), (5_100, 0));
    assert_eq!(se_balance(&phone, "beijing"), 5_100);
    s.assert_ledger_balanced();
}

/// The phone stopped after the service authorized the load, before CREDIT reached the card:
/// the card proves it never loaded (its online counter under a verified MAC1), and the next
/// command loads it — once.
fn a_top_up_torn_before_credit_is_loaded_again_once(s: &Service) {
    let phone = s.phone("a", "Mi 6");
    s.with(&phone, |w| w.enroll("beijing", None)).expect("enrolled");
    let torn = s.with(&phone, |w| w.top_up("beijing", 4_000, Some(Tear::BeforeMoneyCommand)));
    assert!(matches!(torn, Err(WalletError::Interrupted { .. })), "{torn:?}");
    assert_eq!(se_balance(&phone, "beijing"), 0, "the card never got CREDIT");

    // The next command on the phone (another top-up) settles the first before its own.
    let next = s.with(&phone, |w| w.top_up("beijing", 500, None)).expect("loaded");
    assert_eq!(next.recovered.len(), 1, "{:?}", next.recovered);
    assert_eq!(next.recovered[0].outcome, "loaded");
    assert_eq!(next.recovered[0].balance_after_fen, Some(4_000));
    assert_eq!(next.balance_after_fen, 4_500);
    assert_eq!(se_balance(&phone, "beijing"), 4_500);
    // Nothing more is in doubt: a show recovers nothing and the service agrees.
    let report = s.with(&phone, |w| w.show(false)).expect("shown");
    assert!(report.recovered.is_empty() && report.in_flight.is_empty());
    assert_eq!(report.service.expect("the service answers").cards[0].balance_fen, 4_500);
    s.assert_ledger_balanced();
}

/// A phone's token reaches only its own cards: another phone's top-up of them, a view of them,
/// a closure of them are refused as if they did not exist; a forged token is 401.
fn another_phones_token_is_refused(s: &Service) {
    let owner = s.phone("owner", "Mi 6");
    let serial = s.with(&owner, |w| w.enroll("beijing", None)).expect("enrolled").serial;
    let thief = s.phone("thief", "Mi 6");
    s.with(&thief, |w| w.register()).expect("registered");
    let token = yitong_wallet::phone::read(&thief).expect("reads").token.expect("a token");
    let api = s.api();
    use yitong_wallet::api::{TopUpRequest, WalletApi};
    let request = TopUpRequest { card: serial.clone(), amount_fen: 100, order_id: "TU-THIEF-1".into() };
    assert_eq!(service_code(api.open_topup(&token, &request)), (404, "not_found".into()));
    assert_eq!(service_code(api.card(&token, &serial)).0, 404);
    let forged =
        yitong_wallet::Token::new("ytp_0000000000000000000000000000000000000000000000000000000000000000".into());
    assert_eq!(service_code(api.me(&forged)).0, 401);
    assert_eq!(service_code(api.open_topup(&forged, &request)).0, 401);
    // The owner's card is untouched.
    assert_eq!(s.with(&owner, |w| w.top_up("beijing", 700, None)).expect("loaded").balance_after_fen, 700);
    s.assert_ledger_balanced();
}

/// `old` transfers its Beijing card to `new`, each file locked as the CLI locks them.
fn transfer(
    s: &Service,
    old: &std::path::Path,
    new: &std::path::Path,
    tear: Option<Tear>,
) -> Result<Closed, WalletError> {
    let api = s.api();
    let mut old_file = yitong_wallet::PhoneFile::open(old).expect("opens");
    let mut new_file = yitong_wallet::PhoneFile::open(new).expect("opens");
    let mut to = yitong_wallet::Wallet::new(&api, &mut new_file);
    yitong_wallet::Wallet::new(&api, &mut old_file).transfer("beijing", &mut to, tear)
}

fn transfer_moves_the_balance_and_blocks_the_old_card(s: &Service) {
    let old = s.phone("old", "Mi 6");
    let old_serial = s.with(&old, |w| w.enroll("beijing", None)).expect("enrolled").serial;
    s.with(&old, |w| w.top_up("beijing", 8_800, None)).expect("loaded");
    let new = s.phone("new", "Mi MIX");
    let done = transfer(s, &old, &new, None).expect("transferred");
    assert_eq!((done.serial.as_str(), done.moved_fen, done.new_balance_fen), (old_serial.as_str(), 8_800, Some(8_800)));
    let new_serial = done.new_serial.expect("a new card");
    assert_ne!(new_serial, old_serial);
    // The new phone's card holds the balance, as its SE says.
    assert_eq!(se_balance(&new, "beijing"), 8_800);
    // The old card is empty and blocked: a gate refuses it.
    let old_phone = yitong_wallet::phone::read(&old).expect("reads");
    assert!(old_phone.cards.is_empty() && old_phone.in_flight.is_empty(), "{old_phone:?}");
    let retired = &old_phone.retired[0];
    assert_eq!(retired.card.serial, old_serial);
    let mut se = yitong_wallet::SoftSe::power_on(&retired.card.image).expect("powers on");
    let report = yitong_terminal::read_card(&mut se).expect("reads");
    assert_eq!((report.balance_fen, report.locked), (0, true));
    let tap = gate_tap(&retired.card.image);
    assert_eq!(tap.result, TapResult::Refused(Refusal::Locked), "{tap:?}");
    // And the new card passes the gate.
    let new_phone = yitong_wallet::phone::read(&new).expect("reads");
    let tap = gate_tap(&new_phone.cards["beijing"].image);
    assert!(matches!(tap.result, TapResult::Completed(_)), "{tap:?}");
    s.assert_ledger_balanced();
}

fn delete_refunds_the_balance(s: &Service) {
    let phone = s.phone("a", "Mi 6");
    let serial = s.with(&phone, |w| w.enroll("beijing", None)).expect("enrolled").serial;
    s.with(&phone, |w| w.top_up("beijing", 3_300, None)).expect("loaded");
    let done = s.with(&phone, |w| w.delete("beijing", None)).expect("deleted");
    assert_eq!((done.serial.as_str(), done.moved_fen), (serial.as_str(), 3_300));
    let refund = done.refund_order.expect("a refund order");
    assert_eq!(refund.amount_fen, 3_300);
    assert!(["refund_pending", "refunded"].contains(&refund.state.as_str()), "{refund:?}");
    let after = yitong_wallet::phone::read(&phone).expect("reads");
    assert!(after.cards.is_empty());
    let tap = gate_tap(&after.retired[0].card.image);
    assert_eq!(tap.result, TapResult::Refused(Refusal::Locked), "{tap:?}");
    // Topping up a deleted card: the phone has none.
    let error = s.with(&phone, |w| w.top_up("beijing", 100, None)).unwrap_err();
    assert!(matches!(error, WalletError::NoCard { .. }), "{error}");
    s.assert_ledger_balanced();
}

/// The card committed the closure's DEBIT but its answer was lost: the next command (a show)
/// resumes the closure from the card's evidence; the balance is moved once, the card blocked.
fn a_delete_torn_after_debit_is_resumed_by_the_next_command(s: &Service) {
    let phone = s.phone("a", "Mi 6");
    let serial = s.with(&phone, |w| w.enroll("beijing", None)).expect("enrolled").serial;
    s.with(&phone, |w| w.top_up("beijing", 2_500, None)).expect("loaded");
    let torn = s.with(&phone, |w| w.delete("beijing", Some(Tear::MoneyAnswerLost)));
    assert!(matches!(torn, Err(WalletError::Interrupted { .. })), "{torn:?}");
    assert_eq!(se_balance(&phone, "beijing"), 0, "the card committed the debit");
    let in_flight = yitong_wallet::phone::read(&phone).expect("reads").in_flight;
    assert!(matches!(in_flight.get("beijing"), Some(InFlight::Closure { .. })), "{in_flight:?}");

    let report = s.with(&phone, |w| w.show(false)).expect("shown");
    assert_eq!(report.recovered.len(), 1, "{:?}", report.recovered);
    assert_eq!((report.recovered[0].id.as_str(), report.recovered[0].outcome.as_str()), (serial.as_str(), "closed"));
    assert!(report.cards.is_empty() && report.in_flight.is_empty());
    let after = yitong_wallet::phone::read(&phone).expect("reads");
    let tap = gate_tap(&after.retired[0].card.image);
    assert_eq!(tap.result, TapResult::Refused(Refusal::Locked), "{tap:?}");
    s.assert_ledger_balanced();
}

/// The phone stopped before the old card's DEBIT: running the transfer again resumes the
/// closure (the card proves the debit never happened), then the new phone claims the balance.
fn a_transfer_torn_before_debit_is_resumed_by_running_it_again(s: &Service) {
    let old = s.phone("old", "Mi 6");
    s.with(&old, |w| w.enroll("beijing", None)).expect("enrolled");
    s.with(&old, |w| w.top_up("beijing", 1_500, None)).expect("loaded");
    let new = s.phone("new", "Mi 6");
    let torn = transfer(s, &old, &new, Some(Tear::BeforeMoneyCommand));
    assert!(matches!(torn, Err(WalletError::Interrupted { .. })), "{torn:?}");
    assert_eq!(se_balance(&old, "beijing"), 1_500, "no DEBIT reached the card");

    let done = transfer(s, &old, &new, None).expect("transferred");
    assert_eq!((done.moved_fen, done.new_balance_fen), (1_500, Some(1_500)));
    assert_eq!(se_balance(&new, "beijing"), 1_500);
    // Repeating the transfer now: the old phone has no card left.
    let again = transfer(s, &old, &new, None).unwrap_err();
    assert!(matches!(again, WalletError::NoCard { .. }), "{again}");
    s.assert_ledger_balanced();
}

/// The phone stopped after opening (and paying) an order, before `authorize`: the next command
/// loads the paid one and drops the one never paid.
fn a_top_up_stopped_before_authorize_is_loaded_if_paid_and_dropped_if_not(s: &Service) {
    use yitong_wallet::api::{TopUpRequest, WalletApi};
    let phone = s.phone("a", "Mi 6");
    let serial = s.with(&phone, |w| w.enroll("beijing", None)).expect("enrolled").serial;
    let token = yitong_wallet::phone::read(&phone).expect("reads").token.expect("a token");
    let api = s.api();
    let stop_after_opening = |order_id: &str, amount_fen: i64, pay: bool| {
        let request = TopUpRequest { card: serial.clone(), amount_fen, order_id: order_id.into() };
        api.open_topup(&token, &request).expect("opened");
        if pay {
            api.dev_pay(order_id).expect("paid");
        }
        let mut file = yitong_wallet::PhoneFile::open(&phone).expect("opens");
        let flow = InFlight::TopUp { order_id: order_id.into(), amount_fen, step: TopUpStep::Opened, claim_code: None };
        file.phone.in_flight.insert("beijing".into(), flow);
        file.save().expect("saved");
    };

    stop_after_opening("TU-STOPPED-PAID", 900, true);
    let report = s.with(&phone, |w| w.show(false)).expect("shown");
    assert_eq!(report.recovered[0].outcome, "loaded", "{:?}", report.recovered);
    assert_eq!((report.cards[0].card.balance_fen, report.in_flight.len()), (900, 0));

    stop_after_opening("TU-STOPPED-UNPAID", 300, false);
    let report = s.with(&phone, |w| w.show(false)).expect("shown");
    assert_eq!(report.recovered[0].outcome, "not_paid", "{:?}", report.recovered);
    assert_eq!((report.cards[0].card.balance_fen, report.in_flight.len()), (900, 0));
    s.assert_ledger_balanced();
}
