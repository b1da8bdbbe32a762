//! Phone registrations and operator keys on SQLite and PostgreSQL: a device registers once,
//! racing registrations of one device give one token, a token finds its phone and nothing else
//! does, a rotated token replaces the old one (one of two racing rotations wins), a reset
//! registration is claimed once by its own device and SE (one of two racing claims wins), operator
//! keys are scoped to a city, listed without secrets and revoked for good.

mod support;

use support::wallet::mi6;
use support::TestDb;
use yitong_platform::access::{self, AccessError};
use yitong_platform::cities::Cities;
use yitong_platform::issuance::Phone;

/// A phone's own new token (of its randomness: here SHA-256 of a letter stands in for it).
fn token(seed: char) -> String {
    format!("ytp_{}", access::secret_sha256(&seed.to_string()))
}

async fn phones_register_once_and_tokens_find_them(db: &TestDb) {
    let store = &db.store;
    let phone = mi6("phone-A", "FEE-0001").phone;
    let (registered, token) = access::register_phone(store, &phone, 1_000).await.expect("registered");
    assert_eq!(registered.phone, phone);
    let found = access::phone_by_token(store, token.expose()).await.expect("read").expect("found");
    assert_eq!(found, registered);
    assert_eq!(store.phone_of_device("phone-A").await.expect("read"), Some(registered.clone()));
    // Another token of the right shape, the token altered, or an operator-shaped one: nobody.
    let mut altered = token.expose().to_owned();
    let last = altered.pop().expect("a character");
    altered.push(if last == '0' { '1' } else { '0' });
    for presented in [altered.as_str(), "ytp_", "", &token.expose().replacen("ytp_", "yto_", 1)] {
        assert_eq!(access::phone_by_token(store, presented).await.expect("read"), None, "{presented}");
    }
    assert!(matches!(
        access::register_phone(store, &phone, 2_000).await,
        Err(AccessError::PhoneRegistered(device)) if device == "phone-A"
    ));
    let mut bad = phone.clone();
    bad.device_id = "phone\u{0}B".into();
    assert!(matches!(
        access::register_phone(store, &bad, 2_000).await,
        Err(AccessError::BadField { field: "device_id", .. })
    ));

    // Two pools racing to register one device: one token, one row.
    let other = db.open_again().await;
    let phone_b = mi6("phone-B", "FEE-0002").phone;
    let (a, b) =
        tokio::join!(access::register_phone(store, &phone_b, 3_000), access::register_phone(&other, &phone_b, 3_000));
    assert_eq!(usize::from(a.is_ok()) + usize::from(b.is_ok()), 1, "exactly one registration wins");
    other.close().await;
}

async fn a_rotated_token_replaces_the_old_one_and_one_of_two_rotations_wins(db: &TestDb) {
    let store = &db.store;
    let phone = mi6("phone-R", "FEE-0003").phone;
    let (registered, first) = access::register_phone(store, &phone, 1_000).await.expect("registered");
    let first_sha = access::secret_sha256(first.expose());
    let second = token('a');
    let by_hand = format!("ytp_{}", "0a".repeat(32));
    for (bad, why) in [("ytp_short", "malformed"), (first.expose(), "the one in use"), (&by_hand, "not random")] {
        let refused = access::rotate_phone_token(store, &registered, &first_sha, bad).await;
        assert!(matches!(refused, Err(AccessError::BadField { field: "token", .. })), "{why}");
    }
    access::rotate_phone_token(store, &registered, &first_sha, &second).await.expect("rotated");
    assert_eq!(access::phone_by_token(store, first.expose()).await.expect("read"), None, "the old one is dead");
    let found = access::phone_by_token(store, &second).await.expect("read").expect("found");
    assert_eq!(found, registered, "the new one finds the same phone");
    assert!(
        matches!(
            access::rotate_phone_token(store, &registered, &first_sha, &token('b')).await,
            Err(AccessError::TokenReplaced)
        ),
        "the old token rotates nothing"
    );

    // Two stores rotating from the same token at once: one proposal is taken, the other never.
    let other = db.open_again().await;
    let second_sha = access::secret_sha256(&second);
    let (c, d) = (token('c'), token('d'));
    let (taken_c, taken_d) = tokio::join!(
        access::rotate_phone_token(store, &registered, &second_sha, &c),
        access::rotate_phone_token(&other, &registered, &second_sha, &d)
    );
    assert_eq!(usize::from(taken_c.is_ok()) + usize::from(taken_d.is_ok()), 1, "exactly one rotation wins");
    let (winner, loser) = if taken_c.is_ok() { (&c, &d) } else { (&d, &c) };
    assert_eq!(access::phone_by_token(store, winner).await.expect("read"), Some(registered));
    assert_eq!(access::phone_by_token(store, loser).await.expect("read"), None);
    assert_eq!(access::phone_by_token(store, &second).await.expect("read"), None);
    other.close().await;
}

async fn a_reset_registration_is_claimed_once_by_the_same_device_and_se(db: &TestDb) {
    let store = &db.store;
    let phone = mi6("phone-Z", "FEE-0004").phone;
    let (registered, lost) = access::register_phone(store, &phone, 1_000).await.expect("registered");
    let neighbour = mi6("phone-N", "FEE-0005").phone;
    access::register_phone(store, &neighbour, 1_000).await.expect("registered");
    assert!(access::reset_phone(store, "no-such-device", 2_000).await.expect("reset").is_none());
    let (code, until) = access::reset_phone(store, "phone-Z", 2_000).await.expect("reset").expect("a phone");
    assert_eq!(until, 2_000 + access::RESET_CODE_VALID_MS);
    assert!(code.expose().starts_with("ytr_") && code.expose().len() == 4 + 64);
    assert_eq!(access::phone_by_token(store, lost.expose()).await.expect("read"), None, "the lost token is dead");
    assert_eq!(access::phone_by_token(store, code.expose()).await.expect("read"), None, "a code is no token");
    // The phone's own new token; one not made of randomness is refused as a rotation's is.
    let new = token('n');
    let by_hand = format!("ytp_{}", "0a".repeat(32));
    assert!(matches!(
        access::register_phone_again(store, &phone, code.expose(), &by_hand, 3_000).await,
        Err(AccessError::BadField { field: "token", .. })
    ));
    // Another code, a malformed one, another SE, another device, or the code expired: refused alike.
    let other_se = Phone { se_id: "SE-OTHER".into(), ..phone.clone() };
    let wrong = format!("ytr_{}", "ab".repeat(32));
    for (who, code_given, at) in [
        (&phone, wrong.as_str(), 3_000),
        (&phone, "ytr_short", 3_000),
        (&other_se, code.expose(), 3_000),
        (&neighbour, code.expose(), 3_000),
        (&phone, code.expose(), until),
    ] {
        assert!(matches!(
            access::register_phone_again(store, who, code_given, &new, at).await,
            Err(AccessError::PhoneRegistered(device)) if device == who.device_id
        ));
    }
    assert!(matches!(access::register_phone(store, &phone, 3_000).await, Err(AccessError::PhoneRegistered(_))));
    // The code, in time: the same registration, the proposed token its token; the code used up.
    let again = access::register_phone_again(store, &phone, code.expose(), &new, 3_000).await.expect("claimed");
    assert_eq!(again, registered);
    assert_eq!(access::phone_by_token(store, &new).await.expect("read"), Some(registered));
    assert!(matches!(
        access::register_phone_again(store, &phone, code.expose(), &token('m'), 4_000).await,
        Err(AccessError::PhoneRegistered(_))
    ));
    // Two claims of one code from two pools: one token.
    let (code, _) = access::reset_phone(store, "phone-Z", 5_000).await.expect("reset").expect("a phone");
    let other = db.open_again().await;
    let (p, q) = (token('p'), token('q'));
    let (a, b) = tokio::join!(
        access::register_phone_again(store, &phone, code.expose(), &p, 6_000),
        access::register_phone_again(&other, &phone, code.expose(), &q, 6_000)
    );
    assert_eq!(usize::from(a.is_ok()) + usize::from(b.is_ok()), 1, "exactly one claim wins");
    other.close().await;
}

async fn operator_keys_are_scoped_listed_and_revoked(db: &TestDb) {
    let store = &db.store;
    let cities = Cities::builtin().expect("cities");
    let (key, secret) =
        access::new_operator_key(store, &cities, "beijing", "Beijing desk", 1_000).await.expect("a key");
    assert_eq!((key.city.as_str(), key.name.as_str()), ("beijing", "Beijing desk"));
    assert!(secret.expose().starts_with("yto_"));
    assert_eq!(access::operator_by_key(store, secret.expose()).await.expect("read"), Some(key.clone()));
    assert!(matches!(
        access::new_operator_key(store, &cities, "atlantis", "x", 1_000).await,
        Err(AccessError::UnknownCity(_))
    ));
    assert!(matches!(
        access::new_operator_key(store, &cities, "beijing", " ", 1_000).await,
        Err(AccessError::BadField { field: "name", .. })
    ));
    let (second, _) =
        access::new_operator_key(store, &cities, "shanghai", "Shanghai desk", 2_000).await.expect("a key");
    let listed = store.operator_keys().await.expect("listed");
    assert_eq!(listed, vec![key.clone(), second]);

    assert!(store.revoke_operator_key(&key.key_id, 3_000).await.expect("revoked"));
    assert!(!store.revoke_operator_key(&key.key_id, 4_000).await.expect("read"), "once");
    assert!(!store.revoke_operator_key("opk_nosuch", 4_000).await.expect("read"));
    assert_eq!(access::operator_by_key(store, secret.expose()).await.expect("read"), None, "revoked: nothing");
    assert_eq!(store.operator_keys().await.expect("listed")[0].revoked_at_ms, Some(3_000));
}

on_both_backends! {
    phones => phones_register_once_and_tokens_find_them,
    token_rotation => a_rotated_token_replaces_the_old_one_and_one_of_two_rotations_wins,
    operator_keys => operator_keys_are_scoped_listed_and_revoked,
    phone_reset => a_reset_registration_is_claimed_once_by_the_same_device_and_se,
}
