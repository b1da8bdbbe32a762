//! A business day of the platform's own money settled (`settle_day`), on SQLite and
//! PostgreSQL: the fee earned, a load the card proved (cleared, matching the load paid for), a
//! load still in doubt (pending, not cleared), and nothing of the next day; a load at the
//! cut-over on one day; a load fed to the back office counted once across the days.

#[macro_use]
mod support;

use support::wallet::{at, keyring, SecureElement, Wallet, T0};
use support::TestDb;
use yitong_clearing::settlement::{BusinessDay, CutOver, LineKind, Participant};
use yitong_platform::cities::Cities;
use yitong_platform::settlement::settle_day;

const BEIJING_ISSUER: [u8; 8] = [0, 0, 0x10, 0, 0, 0, 0, 1];

async fn a_day_of_fees_and_loads(db: &TestDb) {
    let wallet = Wallet::new(db.store.clone());
    let issued = wallet.issue("phone-A", "F-phone-A").await;
    let card = issued.card.card_id.clone();
    let mut se = SecureElement::new(&issued.image, 0);
    // A load of 50 yuan the card proves with its TAC.
    let order = wallet.paid_top_up("TOP-0001", &card, 5_000, T0).await;
    let command = wallet.ota.initialize_command(&wallet.payments, &order).await.unwrap();
    let answer = se.send(&command);
    let auth = wallet.ota.authorize(&wallet.payments, &order, &answer, at(10, 30, 0), T0 + 10_000).await.unwrap();
    let credit = se.send(&auth.credit_command);
    wallet.ota.complete(&wallet.payments, &order, &credit, T0 + 11_000).await.unwrap();
    // A load of 20 yuan whose CREDIT answer never came back: in doubt.
    let order = wallet.paid_top_up("TOP-0002", &card, 2_000, T0 + 20_000).await;
    let command = wallet.ota.initialize_command(&wallet.payments, &order).await.unwrap();
    let answer = se.send(&command);
    wallet.ota.authorize(&wallet.payments, &order, &answer, at(10, 31, 0), T0 + 30_000).await.unwrap();

    let cities = Cities::builtin().unwrap();
    let day = BusinessDay::parse("2026-11-25", CutOver::default()).unwrap();
    let report = settle_day(wallet.store(), &cities, day).await.unwrap();

    // One load line: the issuer whose host took the money (Beijing's) owes the card's (Beijing's).
    assert_eq!(report.obligations.len(), 1, "{:?}", report.obligations);
    let line = &report.obligations[0];
    assert_eq!((line.kind, line.records, line.amount_fen), (LineKind::Load, 1, 5_000));
    assert_eq!(line.payer.id, Participant::Issuer { issuer_id: BEIJING_ISSUER });
    assert_eq!(line.payee.id, Participant::Issuer { issuer_id: BEIJING_ISSUER });
    let beijing =
        report.issuers.iter().find(|i| i.issuer.id == Participant::Issuer { issuer_id: BEIJING_ISSUER }).unwrap();
    assert_eq!((beijing.host_loads.records, beijing.host_loads.amount_fen), (1, 5_000));
    assert_eq!((beijing.platform_loads.records, beijing.platform_loads.amount_fen), (1, 5_000), "loaded once");
    assert_eq!(beijing.platform_fees.amount_fen, 2_900, "Beijing's sign-up fee");
    assert_eq!(beijing.platform_load_difference_fen, 0);
    let pending = &report.reconciliation.pending_loads;
    assert_eq!((pending.records, pending.amount_fen), (1, 2_000), "the load in doubt is not cleared");
    assert_eq!(report.reconciliation.net_positions_sum_fen, 0);

    // The next day has none of it.
    let next = settle_day(wallet.store(), &cities, day.next().unwrap()).await.unwrap();
    assert!(next.obligations.is_empty() && next.issuers.is_empty(), "{next:?}");
}

/// A load whose MAC2 left at 03:59:50 and whose TAC came back at 04:00:05: the card's load and
/// the load paid for fall on the same business day (the one before the cut-over).
async fn a_load_across_the_cut_over_stays_on_one_day(db: &TestDb) {
    let wallet = Wallet::new(db.store.clone());
    let issued = wallet.issue("phone-A", "F-phone-A").await;
    let mut se = SecureElement::new(&issued.image, 0);
    // 2026-11-26 03:59:50 in Beijing is T0 (10:00 the day before) + 17 h 59 min 50 s.
    let before_cut_over = T0 + 64_790_000;
    let order = wallet.paid_top_up("TOP-0001", &issued.card.card_id, 1_000, before_cut_over - 5_000).await;
    let command = wallet.ota.initialize_command(&wallet.payments, &order).await.unwrap();
    let answer = se.send(&command);
    let card_time = yitong_profile::DateTime::new(2026, 11, 26, 3, 59, 50).unwrap();
    let auth = wallet.ota.authorize(&wallet.payments, &order, &answer, card_time, before_cut_over).await.unwrap();
    let credit = se.send(&auth.credit_command);
    wallet.ota.complete(&wallet.payments, &order, &credit, before_cut_over + 15_000).await.unwrap();

    let cities = Cities::builtin().unwrap();
    let day = BusinessDay::parse("2026-11-25", CutOver::default()).unwrap();
    for (day, loads) in [(day, 1_000), (day.next().unwrap(), 0)] {
        let report = settle_day(wallet.store(), &cities, day).await.unwrap();
        let (host, paid) = report
            .issuers
            .iter()
            .map(|i| (i.host_loads.amount_fen, i.platform_loads.amount_fen))
            .fold((0, 0), |(h, p), (a, b)| (h + a, p + b));
        assert_eq!((host, paid), (loads, loads), "{day:?}");
    }
}

/// A load the platform made at 03:59:50 whose card stamp says 04:00:10 (the stamp is the
/// platform's time sent with MAC2; here read a little later): on the day of its stamp, as the
/// gates' records are — neither lost between the two days nor counted on both, before and after
/// it is fed to the back office.
async fn a_fed_load_counts_once(db: &TestDb) {
    let wallet = Wallet::new(db.store.clone());
    let issued = wallet.issue("phone-A", "F-phone-A").await;
    let mut se = SecureElement::new(&issued.image, 0);
    let before_cut_over = T0 + 64_790_000;
    let order = wallet.paid_top_up("TOP-0001", &issued.card.card_id, 1_000, before_cut_over - 5_000).await;
    let answer = se.send(&wallet.ota.initialize_command(&wallet.payments, &order).await.unwrap());
    let card_time = yitong_profile::DateTime::new(2026, 11, 26, 4, 0, 10).unwrap();
    let auth = wallet.ota.authorize(&wallet.payments, &order, &answer, card_time, before_cut_over).await.unwrap();
    let credit = se.send(&auth.credit_command);
    wallet.ota.complete(&wallet.payments, &order, &credit, before_cut_over + 5_000).await.unwrap();
    let cities = Cities::builtin().unwrap();
    let day = BusinessDay::parse("2026-11-25", CutOver::default()).unwrap();
    // The host's loads of the two days: the load on the day of its stamp, the 26th.
    let host_loads = || async {
        let mut loads = Vec::new();
        for day in [day, day.next().unwrap()] {
            let report = settle_day(wallet.store(), &cities, day).await.unwrap();
            loads.push(report.issuers.iter().map(|i| i.host_loads.amount_fen).sum::<i64>());
        }
        loads
    };
    assert_eq!(host_loads().await, [0, 1_000], "before the back office has it");
    let tac = keyring(&cities).tac_keys();
    let feed = db.store.feed_platform_records(&tac, card_time, before_cut_over + 60_000, i64::MIN).await.unwrap();
    assert_eq!(feed.fed, 1);
    assert_eq!(host_loads().await, [0, 1_000], "fed, still once");
}

on_both_backends! {
    day => a_day_of_fees_and_loads,
    cut_over => a_load_across_the_cut_over_stays_on_one_day,
    fed => a_fed_load_counts_once,
}
