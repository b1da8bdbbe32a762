use super::*;
use crate::cities::Cities;

fn at(text: &str) -> DateTime {
    DateTime::parse(text).unwrap()
}

fn window(starts: &str, ends: &str) -> Window {
    Window { starts: at(starts), ends: at(ends) }
}

/// Beijing's launch as the brief tells it: free sign-up for a limited period from 14 August
/// 2017 (the window's end and the cap are example values), and a Mi Wallet offer.
fn beijing() -> PricingRules {
    let cities = Cities::builtin().unwrap();
    PricingRules::for_city(
        cities.get("beijing").unwrap(),
        vec![
            Promotion {
                id: "launch-2017".into(),
                makers: vec![],
                channels: vec![],
                window: window("2017-08-14 00:00:00", "2017-10-01 00:00:00"),
                fee_fen: 0,
                cap: Some(3),
            },
            Promotion {
                id: "mi-wallet-half-price".into(),
                makers: vec!["Xiaomi".into()],
                channels: vec![Channel::MakerWallet],
                window: window("2017-09-01 00:00:00", "2018-01-01 00:00:00"),
                fee_fen: 1_450,
                cap: None,
            },
            Promotion {
                id: "service-hall".into(),
                makers: vec![],
                channels: vec![Channel::CarrierHall],
                window: window("2017-09-01 00:00:00", "2018-01-01 00:00:00"),
                fee_fen: 1_000,
                cap: None,
            },
        ],
    )
    .unwrap()
}

fn quote(rules: &PricingRules, maker: &str, channel: Channel, when: &str, signups: u32) -> Quote {
    let request = SignupRequest { maker, channel, at: at(when) };
    match signup_fee(rules, &request, |_| signups, false) {
        Decision::NewCard(quote) => quote,
        Decision::ExistingCard => panic!("no card yet"),
    }
}

#[test]
fn standard_fee_is_the_citys_29_yuan_outside_every_window() {
    let rules = beijing();
    assert_eq!(rules.standard_fee_fen(), 2_900);
    let before = quote(&rules, "Huawei", Channel::MakerWallet, "2017-08-13 23:59:59", 0);
    assert_eq!((before.fee_fen, before.standard_fee_fen, before.promotion.as_deref()), (2_900, 2_900, None));
    assert_eq!(before.passed_over[0], ("launch-2017".to_string(), PassedOver::NotStarted));
    let after = quote(&rules, "Huawei", Channel::MakerWallet, "2018-01-01 00:00:00", 0);
    assert_eq!(after.fee_fen, 2_900);
    assert_eq!(after.passed_over[0], ("launch-2017".to_string(), PassedOver::Ended));
}

#[test]
fn inside_the_window_the_fee_is_waived_from_its_first_second_to_its_last() {
    let rules = beijing();
    for when in ["2017-08-14 00:00:00", "2017-08-20 09:00:00", "2017-09-30 23:59:59"] {
        let q = quote(&rules, "Samsung", Channel::CityApp, when, 0);
        assert_eq!((q.fee_fen, q.promotion.as_deref()), (0, Some("launch-2017")), "{when}");
    }
    // The window's end is exclusive: from 1 October the Mi Wallet offer is the best there is.
    let q = quote(&rules, "Xiaomi", Channel::MakerWallet, "2017-10-01 00:00:00", 0);
    assert_eq!((q.fee_fen, q.promotion.as_deref()), (1_450, Some("mi-wallet-half-price")));
}

#[test]
fn promotions_are_per_maker_and_per_channel() {
    let rules = beijing();
    let when = "2017-11-11 12:00:00";
    let mi = quote(&rules, "xiaomi", Channel::MakerWallet, when, 0);
    assert_eq!((mi.fee_fen, mi.promotion.as_deref()), (1_450, Some("mi-wallet-half-price")));
    let huawei = quote(&rules, "Huawei", Channel::MakerWallet, when, 0);
    assert_eq!(huawei.fee_fen, 2_900);
    assert!(huawei.passed_over.contains(&("mi-wallet-half-price".into(), PassedOver::OtherMaker)));
    let mi_in_city_app = quote(&rules, "Xiaomi", Channel::CityApp, when, 0);
    assert_eq!(mi_in_city_app.fee_fen, 2_900);
    assert!(mi_in_city_app.passed_over.contains(&("mi-wallet-half-price".into(), PassedOver::OtherChannel)));
    assert!(mi_in_city_app.passed_over.contains(&("service-hall".into(), PassedOver::OtherChannel)));
    let hall = quote(&rules, "OPPO", Channel::CarrierHall, when, 0);
    assert_eq!((hall.fee_fen, hall.promotion.as_deref()), (1_000, Some("service-hall")));
}

#[test]
fn the_cap_ends_the_promotion_at_its_last_sign_up() {
    let rules = beijing();
    let when = "2017-08-20 09:00:00";
    let last = quote(&rules, "Huawei", Channel::MakerWallet, when, 2);
    assert_eq!((last.fee_fen, last.promotion.as_deref()), (0, Some("launch-2017")));
    let full = quote(&rules, "Huawei", Channel::MakerWallet, when, 3);
    assert_eq!((full.fee_fen, full.promotion), (2_900, None));
    assert_eq!(full.passed_over[0], ("launch-2017".to_string(), PassedOver::CapReached { cap: 3 }));
    // Counts are per promotion: a full launch promotion leaves the Mi Wallet offer open.
    let request = SignupRequest { maker: "Xiaomi", channel: Channel::MakerWallet, at: at("2017-09-05 10:00:00") };
    let counts = |id: &str| if id == "launch-2017" { 3 } else { 1_000_000 };
    let Decision::NewCard(q) = signup_fee(&rules, &request, counts, false) else { panic!("no card yet") };
    assert_eq!((q.fee_fen, q.promotion.as_deref()), (1_450, Some("mi-wallet-half-price")));
}

#[test]
fn the_lowest_fee_wins_and_the_other_is_passed_over() {
    let rules = beijing();
    // 5 September: launch (free) and Mi Wallet (14.50) both apply to a Xiaomi in Mi Wallet.
    let q = quote(&rules, "Xiaomi", Channel::MakerWallet, "2017-09-05 10:00:00", 0);
    assert_eq!((q.fee_fen, q.promotion.as_deref()), (0, Some("launch-2017")));
    assert!(q.passed_over.contains(&("mi-wallet-half-price".into(), PassedOver::Superseded)));
}

#[test]
fn a_repeated_request_is_never_charged_twice() {
    let rules = beijing();
    for when in ["2017-08-20 09:00:00", "2017-12-01 09:00:00"] {
        let request = SignupRequest { maker: "Xiaomi", channel: Channel::MakerWallet, at: at(when) };
        assert_eq!(signup_fee(&rules, &request, |_| 0, true), Decision::ExistingCard);
    }
}

#[test]
fn rules_that_make_no_sense_are_refused() {
    let promo = |id: &str, fee_fen, cap| Promotion {
        id: id.into(),
        makers: vec![],
        channels: vec![],
        window: window("2017-08-14 00:00:00", "2017-09-14 00:00:00"),
        fee_fen,
        cap,
    };
    assert_eq!(
        PricingRules::new(2_900, vec![promo("dear", 3_000, None)]),
        Err(PricingError::FeeAboveStandard { id: "dear".into(), fee_fen: 3_000, standard_fee_fen: 2_900 })
    );
    assert_eq!(
        PricingRules::new(2_900, vec![promo("none", 0, Some(0))]),
        Err(PricingError::ZeroCap { id: "none".into() })
    );
    assert_eq!(
        PricingRules::new(2_900, vec![promo("a", 0, None), promo("a", 100, None)]),
        Err(PricingError::DuplicatePromotion { id: "a".into() })
    );
    assert_eq!(PricingRules::new(2_900, vec![promo(" ", 0, None)]), Err(PricingError::EmptyId));
    let mut backwards = promo("backwards", 0, None);
    backwards.window = window("2017-09-14 00:00:00", "2017-09-14 00:00:00");
    assert_eq!(PricingRules::new(2_900, vec![backwards]), Err(PricingError::EmptyWindow { id: "backwards".into() }));
    let many = (0..=PROMOTIONS_MAX).map(|i| promo(&i.to_string(), 0, None)).collect();
    assert_eq!(PricingRules::new(2_900, many), Err(PricingError::TooManyPromotions { count: 65 }));
    // Without promotions the standard fee is all there is.
    let plain = PricingRules::new(2_900, vec![]).unwrap();
    assert_eq!(quote(&plain, "Meizu", Channel::CarrierHall, "2017-08-20 09:00:00", 0).fee_fen, 2_900);
}
