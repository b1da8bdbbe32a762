use super::*;
use crate::cities::Cities;

fn setup() -> (DeviceRegistry, Cities) {
    let cities = Cities::builtin().unwrap();
    (DeviceRegistry::builtin(&cities).unwrap(), cities)
}

#[test]
fn catalogue_has_six_makers_and_about_160_models() {
    let (registry, _) = setup();
    let makers: Vec<&str> = registry.makers().map(|m| m.name.as_str()).collect();
    assert_eq!(makers, ["Huawei", "Meizu", "OPPO", "Samsung", "vivo", "Xiaomi"]);
    assert_eq!(registry.model_count(), 160);
    for maker in &makers {
        assert!(registry.models().filter(|m| &m.maker == maker).count() >= 20, "{maker}");
    }
}

#[test]
fn the_briefs_models_are_present_as_the_brief_says() {
    let (registry, _) = setup();
    for (maker, model) in [
        ("Xiaomi", "Mi 6"),
        ("Xiaomi", "Mi MIX"),
        ("Xiaomi", "Mi Note 2"),
        ("Xiaomi", "Mi 5S"),
        ("Xiaomi", "Mi 5S Plus"),
        ("Xiaomi", "Mi 5"),
        ("Huawei", "P10"),
        ("Samsung", "S8 Plus"),
    ] {
        let device = registry.model(maker, model).unwrap_or_else(|| panic!("{maker} {model}"));
        assert!(device.nfc, "{maker} {model}");
        assert_eq!(device.secure_element, SecureElementKind::Embedded, "{maker} {model}");
        assert_eq!(device.source, Source::Brief, "{maker} {model}");
        assert!(device.cities.includes("beijing"), "{maker} {model}");
    }
    // Xiaomi's six carry cards in all ten regions (the brief).
    assert_eq!(registry.model("xiaomi", "Mi 5").unwrap().cities, CitySupport::All);
    assert_eq!(registry.models().filter(|m| m.source == Source::Brief).count(), 8);
    // Spellings riders use: the brief's own "Mi6", "Xiaomi Mix", "Samsung S8 Plus".
    assert_eq!(registry.model("XIAOMI", "Mi6").unwrap().model, "Mi 6");
    assert_eq!(registry.model("Xiaomi", "Xiaomi Mix").unwrap().model, "Mi MIX");
    assert_eq!(registry.model("samsung", "Galaxy S8 Plus").unwrap().model, "Galaxy S8+");
}

#[test]
fn embedded_se_phone_signs_up_in_the_makers_or_the_citys_app() {
    let (registry, cities) = setup();
    let answer = registry.eligibility("Xiaomi", "Mi 6", "beijing", &cities);
    assert_eq!(answer.path(), SignupPath::EmbeddedSe);
    assert_eq!(
        answer,
        Eligibility::EmbeddedSe {
            maker: "Xiaomi".into(),
            model: "Mi 6".into(),
            city: "beijing".into(),
            wallet_app: "Mi Wallet (小米钱包)".into(),
            city_app: Some("北京一卡通 (Beijing All-in-One Card)".into()),
        }
    );
    assert_eq!(
        answer.reason(),
        "the Xiaomi Mi 6 has an embedded secure element that carries beijing cards: sign up in \
         Mi Wallet (小米钱包) or 北京一卡通 (Beijing All-in-One Card)"
    );
    // A city without its own app: the maker's wallet only.
    let wuhan = registry.eligibility("Huawei", "P10", "Wuhan", &cities);
    assert_eq!(wuhan.path(), SignupPath::EmbeddedSe);
    assert!(wuhan.reason().ends_with("sign up in Huawei Wallet (华为钱包)"), "{}", wuhan.reason());
}

#[test]
fn nfc_phone_without_embedded_se_needs_an_nfc_sim() {
    let (registry, cities) = setup();
    let answer = registry.eligibility("Samsung", "Galaxy S6", "shanghai", &cities);
    assert_eq!(answer.path(), SignupPath::NfcSim);
    assert!(answer.reason().contains("NFC-SIM at the carrier's service hall"), "{}", answer.reason());
}

#[test]
fn every_way_of_not_being_supported_says_why() {
    let (registry, cities) = setup();
    let why = |maker, model, city| match registry.eligibility(maker, model, city, &cities) {
        Eligibility::NotSupported(why) => (why.clone(), why.to_string()),
        other => panic!("{maker} {model} in {city}: {other:?}"),
    };
    let (reason, text) = why("Xiaomi", "Mi 6", "atlantis");
    assert_eq!(reason, NotSupported::UnknownCity { city: "atlantis".into() });
    assert_eq!(text, "no phone cards are issued for city `atlantis`");
    let (reason, _) = why("Nokia", "3310", "beijing");
    assert_eq!(reason, NotSupported::UnknownMaker { maker: "Nokia".into() });
    let (_, text) = why("xiaomi", "Mi 99", "beijing");
    assert_eq!(text, "Xiaomi `Mi 99` is not in the device catalogue");
    let (reason, text) = why("OPPO", "R11", "beijing");
    assert_eq!(reason, NotSupported::NoNfc { maker: "OPPO".into(), model: "R11".into() });
    assert_eq!(text, "the OPPO R11 has no NFC");
    let (_, text) = why("Samsung", "S8 Plus", "chongqing");
    assert_eq!(
        text,
        "the Samsung Galaxy S8+ carries no chongqing card yet; it carries cards of beijing, guangzhou, shanghai, shenzhen"
    );
}

#[test]
fn nfc_without_a_secure_element_is_not_supported() {
    let (mut registry, cities) = setup();
    let csv = "maker,model,aliases,nfc,secure_element,cities,source\nMeizu,HCE One,,yes,none,,example\n";
    registry.import_models_csv(csv, "extra.csv", &cities).unwrap();
    let answer = registry.eligibility("Meizu", "HCE One", "beijing", &cities);
    assert_eq!(
        answer,
        Eligibility::NotSupported(NotSupported::NoSecureElement { maker: "Meizu".into(), model: "HCE One".into() })
    );
    assert!(answer.reason().contains("no secure element"), "{}", answer.reason());
}

#[test]
fn an_import_adds_and_updates_models() {
    let (mut registry, cities) = setup();
    let csv = "# a carrier's additions\n\
               maker,model,aliases,nfc,secure_element,cities,source\n\
               Xiaomi,Mi 7,Mi7 Pro,yes,ese,beijing shanghai,example\n\
               OPPO,R11,,yes,nfc-sim,all,example\n";
    let summary = registry.import_models_csv(csv, "extra.csv", &cities).unwrap();
    assert_eq!(summary, ImportSummary { added: 1, updated: 1 });
    assert_eq!(registry.model_count(), 161);
    assert_eq!(registry.eligibility("xiaomi", "mi7pro", "shanghai", &cities).path(), SignupPath::EmbeddedSe);
    assert_eq!(registry.eligibility("OPPO", "R11", "beijing", &cities).path(), SignupPath::NfcSim);
    let makers = "maker,wallet_app,source\nNokia,Nokia Wallet,example\nXiaomi,Xiaomi Pay,example\n";
    assert_eq!(registry.import_makers_csv(makers, "makers.csv").unwrap(), ImportSummary { added: 1, updated: 1 });
    assert_eq!(registry.maker("xiaomi").unwrap().wallet_app, "Xiaomi Pay");
}

/// Imports `rows` under the models header and returns the error as text.
fn import_error(rows: &str) -> (CatalogueError, String) {
    let (mut registry, cities) = setup();
    let before = registry.model_count();
    let csv = format!("# comment\nmaker,model,aliases,nfc,secure_element,cities,source\n{rows}");
    let err = registry.import_models_csv(&csv, "extra.csv", &cities).unwrap_err();
    assert_eq!(registry.model_count(), before, "all or nothing");
    let text = err.to_string();
    (err, text)
}

#[test]
fn import_errors_name_file_line_and_field() {
    let good = "Xiaomi,Mi 7,,yes,ese,beijing,example\n";
    let (err, text) = import_error(&format!("{good}Xiaomi,Mi 8,,maybe,ese,beijing,example\n"));
    assert_eq!((err.file.as_str(), err.line, err.field.as_deref()), ("extra.csv", Some(4), Some("nfc")));
    assert_eq!(text, "extra.csv:4: nfc: `maybe` is not yes or no");
    let (_, text) = import_error("Nokia,3310,,no,none,,example\n");
    assert!(text.starts_with("extra.csv:3: maker: unknown maker `Nokia`; known: Huawei,"), "{text}");
    let (_, text) = import_error("Xiaomi,Mi 7,,yes,chip,beijing,example\n");
    assert_eq!(text, "extra.csv:3: secure_element: `chip` is not ese, nfc-sim or none");
    let (_, text) = import_error("Xiaomi,Mi 7,,no,ese,beijing,example\n");
    assert_eq!(text, "extra.csv:3: secure_element: `ese` needs NFC, but nfc is no");
    let (_, text) = import_error("Xiaomi,Mi 7,,yes,ese,beijing atlantis,example\n");
    assert!(text.starts_with("extra.csv:3: cities: unknown city `atlantis`; known: all, beijing,"), "{text}");
    let (_, text) = import_error("Xiaomi,Mi 7,,yes,ese,,example\n");
    assert_eq!(text, "extra.csv:3: cities: a phone with secure element `ese` names its cities (or all)");
    let (_, text) = import_error("Xiaomi,Mi 7,,no,none,all,example\n");
    assert_eq!(text, "extra.csv:3: cities: a phone that cannot carry a card supports no city");
    let (_, text) = import_error("Xiaomi,,,yes,ese,all,example\n");
    assert_eq!(text, "extra.csv:3: model: is empty");
    let (_, text) = import_error("Xiaomi,Mi 7,,yes,ese,all,rumour\n");
    assert_eq!(text, "extra.csv:3: source: `rumour` is not brief or example");
    let (_, text) = import_error(&format!("{good}Xiaomi,mi7,,yes,ese,all,example\n"));
    assert_eq!(text, "extra.csv:4: model: `mi7` is already on line 3");
    let (_, text) = import_error("Xiaomi,Mi 7,Mi 6,yes,ese,all,example\n");
    assert_eq!(text, "extra.csv:3: aliases: `Mi 6` already names Xiaomi Mi 6");
    let (err, text) = import_error("Xiaomi,Mi 7,yes,ese\n");
    assert_eq!(err.line, Some(3), "{text}");
    assert!(text.contains("not a CSV row of 7 fields"), "{text}");
}

#[test]
fn a_file_without_the_columns_is_refused_by_name() {
    let (mut registry, cities) = setup();
    let err = registry.import_models_csv("maker,model\nXiaomi,Mi 7\n", "short.csv", &cities).unwrap_err();
    assert_eq!(err.field.as_deref(), Some("aliases"));
    assert!(err.to_string().starts_with("short.csv: aliases: the header has no `aliases` column"), "{err}");
    let err = registry.import_makers_csv("maker,wallet_app,source\nXiaomi,,brief\n", "m.csv").unwrap_err();
    assert_eq!(err.to_string(), "m.csv:2: wallet_app: is empty");
}
