//! Keys per (issuer, key version) in the software security module and load host, against real
//! cards: a module holding versions 1 and 2 serves cards of both during a rollover; a card of a
//! version the module lacks is a key mismatch, a card of an issuer it lacks an unknown issuer; the
//! PSAM's APPLICATION BLOCK MAC blocks a real card.

use yitong_card::testing::CountingRng;
use yitong_card::{Card, CardSpec, MasterKeys, MemStore};
use yitong_crypto::Algorithm;
use yitong_profile::apdu::{self, PurchaseInit};
use yitong_profile::files::IssuerData;
use yitong_profile::{DateTime, StatusWord};
use yitong_terminal::{
    IssuerKeys, LoadKeyHolder, LoadRequest, Mac1Request, PsamKeys, SamError, SecurityModule, SoftwareLoadHost,
    SoftwarePsam,
};

const ISSUER_ID: [u8; 8] = [0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x01];
const OTHER_ISSUER: [u8; 8] = [0x00, 0x00, 0x20, 0x00, 0x00, 0x00, 0x00, 0x01];
const TERMINAL: [u8; 6] = [0x10, 0, 0, 0, 0, 1];

fn keys(version: u8) -> MasterKeys {
    let v = version;
    MasterKeys::new(Algorithm::Des, [0x10 + v; 16], [0x20 + v; 16], [0x30 + v; 16], [0x40 + v; 16], [0x50 + v; 16])
}

fn issuer(issuer_id: [u8; 8], serial_tail: u8) -> IssuerData {
    IssuerData {
        issuer_id,
        app_type: 0x02,
        app_version: 0x01,
        serial: [0x10, 0, 0, 0, 0, 0, 0, 0x12, 0x34, serial_tail],
        valid_from: [0x20, 0x26, 0x01, 0x01],
        valid_to: [0x20, 0x30, 0x12, 0x31],
    }
}

type TestCard = Card<MemStore, CountingRng>;

fn card(issuer: IssuerData, master: MasterKeys, version: u8) -> TestCard {
    let mut card =
        Card::power_on(MemStore::new(CardSpec::new(issuer, master, version).personalize()), CountingRng(9)).unwrap();
    assert_eq!(sw(&card.process(&apdu::select_by_name(&yitong_profile::apdu::AID_TUNION)).unwrap()), StatusWord::OK);
    card
}

fn sw(r: &[u8]) -> StatusWord {
    StatusWord::split(r).unwrap().1
}

fn at() -> DateTime {
    DateTime::parse("2026-11-25T08:30:00").unwrap()
}

/// A zero-amount purchase: the PSAM makes MAC1, the card answers MAC2, the PSAM checks it.
fn purchase(psam: &mut SoftwarePsam, card: &mut TestCard, issuer: &IssuerData) -> Result<(), SamError> {
    let r = card.process(&apdu::initialize_for_purchase(false, 0, psam.terminal_id())).unwrap();
    let init = PurchaseInit::decode(StatusWord::split(&r).unwrap().0).unwrap();
    let request = Mac1Request {
        card_random: init.card_random,
        offline_counter: init.offline_counter,
        amount_fen: 0,
        transaction_type: apdu::transaction_type::EP_PURCHASE,
        at: at(),
        key_version: init.key_version,
        algorithm_id: init.algorithm_id,
        asn8: issuer.asn8(),
        issuer_id: issuer.issuer_id,
    };
    let (ttn, mac1) = psam.purchase_mac1(&request)?;
    let r = card.process(&apdu::debit_for_purchase(ttn, at().date_bcd(), at().time_bcd(), mac1)).unwrap();
    assert_eq!(sw(&r), StatusWord::OK);
    psam.verify_purchase_mac2(r[4..8].try_into().unwrap())
}

fn psam_with_versions(versions: &[u8]) -> SoftwarePsam {
    let mut psam = SoftwarePsam::new(TERMINAL, 1);
    for &v in versions {
        let k = keys(v);
        psam.add_keys(ISSUER_ID, v, PsamKeys { purchase: k.purchase().clone(), maintenance: k.maintenance().clone() });
    }
    psam
}

#[test]
fn a_psam_holding_two_versions_serves_cards_of_both() {
    let mut psam = psam_with_versions(&[1, 2]);
    for version in [1, 2] {
        let issuer = issuer(ISSUER_ID, version);
        let mut card = card(issuer, keys(version), version);
        assert_eq!(purchase(&mut psam, &mut card, &issuer), Ok(()), "version {version}");
    }
}

#[test]
fn a_version_the_psam_lacks_is_a_key_mismatch_and_another_issuer_unknown() {
    let mut psam = psam_with_versions(&[1]);
    let new_issuer = issuer(ISSUER_ID, 2);
    let mut new_card = card(new_issuer, keys(2), 2);
    assert_eq!(purchase(&mut psam, &mut new_card, &new_issuer), Err(SamError::KeyMismatch));

    let foreign = issuer(OTHER_ISSUER, 3);
    let mut foreign_card = card(foreign, keys(1), 1);
    assert_eq!(purchase(&mut psam, &mut foreign_card, &foreign), Err(SamError::UnknownIssuer));

    // The right issuer and version, but an SM4 card against DES keys: a mismatch, not an unknown issuer.
    let sm4 = MasterKeys::new(Algorithm::Sm4, [0x21; 16], [0x21; 16], [0x21; 16], [0x21; 16], [0x21; 16]);
    let mut sm4_card = card(issuer(ISSUER_ID, 4), sm4, 1);
    assert_eq!(purchase(&mut psam, &mut sm4_card, &issuer(ISSUER_ID, 4)), Err(SamError::KeyMismatch));
    assert_ne!(SamError::KeyMismatch.to_string(), SamError::UnknownIssuer.to_string());
    assert!(SamError::KeyMismatch.to_string().contains("key version or algorithm"));
}

#[test]
fn the_load_host_holds_load_keys_per_version() {
    let mut host = SoftwareLoadHost::new();
    host.add_keys(ISSUER_ID, 1, keys(1).load().clone());
    host.add_issuer(ISSUER_ID, IssuerKeys { key_version: 2, master: keys(2) });
    for version in [1, 2, 3] {
        let issuer = issuer(ISSUER_ID, version);
        let mut card = card(issuer, keys(version), version);
        let r = card.process(&apdu::initialize_for_load(500, TERMINAL)).unwrap();
        let init = apdu::LoadInit::decode(StatusWord::split(&r).unwrap().0).unwrap();
        let request = LoadRequest {
            issuer_id: ISSUER_ID,
            asn8: issuer.asn8(),
            card_random: init.card_random,
            online_counter: init.online_counter,
            balance_before_fen: init.balance_fen,
            amount_fen: 500,
            terminal_id: TERMINAL,
            at: at(),
            key_version: init.key_version,
            algorithm_id: init.algorithm_id,
            mac1: init.mac1,
        };
        match (version, host.authorize_load(&request)) {
            (3, result) => assert_eq!(result, Err(SamError::KeyMismatch)),
            (_, Ok(mac2)) => {
                let r = card.process(&apdu::credit_for_load(at().date_bcd(), at().time_bcd(), mac2)).unwrap();
                assert_eq!(sw(&r), StatusWord::OK, "version {version}");
            }
            (_, Err(e)) => panic!("version {version}: {e}"),
        }
    }
    let mut forged = LoadRequest {
        issuer_id: OTHER_ISSUER,
        asn8: [0; 8],
        card_random: [0; 4],
        online_counter: 0,
        balance_before_fen: 0,
        amount_fen: 1,
        terminal_id: TERMINAL,
        at: at(),
        key_version: 1,
        algorithm_id: 0,
        mac1: [0; 4],
    };
    assert_eq!(host.authorize_load(&forged), Err(SamError::UnknownIssuer));
    forged.issuer_id = ISSUER_ID;
    assert_eq!(host.authorize_load(&forged), Err(SamError::MacMismatch));
}

/// The gate's block flow: SELECT → GET CHALLENGE → APPLICATION BLOCK with the PSAM's MAC.
#[test]
fn the_psams_block_mac_blocks_a_real_card() {
    let psam = psam_with_versions(&[1, 2]);
    for (version, key_version) in [(1, Some(1)), (2, Some(2)), (2, None)] {
        let issuer = issuer(ISSUER_ID, version);
        let mut card = card(issuer, keys(version), version);
        let r = card.process(&apdu::get_challenge()).unwrap();
        let challenge: [u8; 4] = StatusWord::split(&r).unwrap().0.try_into().unwrap();
        let mac = psam.application_block_mac(ISSUER_ID, issuer.asn8(), key_version, challenge).unwrap();
        assert_eq!(sw(&card.process(&apdu::application_block(false, mac)).unwrap()), StatusWord::OK);
        let r = card.process(&apdu::select_by_name(&apdu::AID_TUNION)).unwrap();
        assert_eq!(sw(&r), StatusWord::APPLICATION_LOCKED, "version {version}");
    }
    // No key version given: the newest held (2) is used, so an old card's MAC is wrong (6988)
    // and the gate must learn the version from INITIALIZE and ask again.
    let issuer1 = issuer(ISSUER_ID, 1);
    let mut old = card(issuer1, keys(1), 1);
    let challenge: [u8; 4] =
        StatusWord::split(&old.process(&apdu::get_challenge()).unwrap()).unwrap().0.try_into().unwrap();
    let mac = psam.application_block_mac(ISSUER_ID, issuer1.asn8(), None, challenge).unwrap();
    assert_eq!(sw(&old.process(&apdu::application_block(false, mac)).unwrap()), StatusWord::SECURE_MESSAGING_WRONG);

    assert_eq!(psam.application_block_mac(ISSUER_ID, [0; 8], Some(3), [0; 4]), Err(SamError::KeyMismatch));
    assert_eq!(psam.application_block_mac(OTHER_ISSUER, [0; 8], None, [0; 4]), Err(SamError::UnknownIssuer));
}
