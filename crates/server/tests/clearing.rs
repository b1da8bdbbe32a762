//! Gates' uploads over HTTP: a load record with the card's real TAC (the platform's own
//! over-the-air load, uploaded as its host's batch) is accepted into the card's shadow; the same
//! batch again is answered as the first time; the record again in another batch is a duplicate;
//! forged copies are rejected with their reason, and the third TAC failure puts the card on the
//! hotlist by policy; the binary encoding works the same, `/metrics` counts the uploads; bad
//! uploads are 4xx. The platform's own
//! loads reach the shadow without an upload, fed once.

mod support;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use support::{issue, service, top_up, SecureElement, Service};
use tower::ServiceExt;
use yitong_clearing::batch::{Batch, BatchHeader, BINARY_MEDIA_TYPE};
use yitong_clearing::shadow::CardId;
use yitong_platform::access;
use yitong_platform::payments::MerchantOrderId;
use yitong_record::TapRecord;

/// The over-the-air load host's terminal in Beijing: `1000 · FFFF · 0002`.
const HOST: [u8; 6] = [0x10, 0x00, 0xFF, 0xFF, 0x00, 0x02];

async fn upload(s: &Service, key: &str, media: &str, body: Vec<u8>) -> (StatusCode, Value) {
    let request = Request::post("/v1/clearing/batches")
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", media)
        .body(Body::from(body))
        .unwrap();
    let response = yitong_server::router(s.state.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or_else(|_| panic!("not JSON: {bytes:?}")))
}

fn batch(id: &str, records: Vec<TapRecord>) -> Batch {
    Batch { header: BatchHeader { batch_id: id.into(), gate: HOST, operator: "beijing-card".into() }, records }
}

fn lines(batch: &Batch) -> Vec<u8> {
    batch.to_json_lines().unwrap().into_bytes()
}

#[tokio::test]
async fn uploads_are_proven_deduplicated_and_forgeries_hotlisted() {
    let s = service().await;
    let issued = issue(&s, "FEE-0001").await;
    let serial = issued["card"]["serial"].as_str().unwrap().to_owned();
    let mut se = SecureElement::new(issued["image_hex"].as_str().unwrap());
    top_up(&s, &s.token, &mut se, &serial, "TOP-0001", 5_000).await;
    let load = s.state.store().ota_loads(&MerchantOrderId::parse("TOP-0001").unwrap()).await.unwrap();
    let record = load[0].record.clone();
    assert!(record.tac.is_some(), "the card's TAC");
    let (_, key) = access::new_operator_key(s.state.store(), s.state.cities(), "beijing", "host", 0).await.unwrap();
    let key = key.expose().to_owned();

    let first = batch("B1", vec![record.clone()]);
    let (status, answer) = upload(&s, &key, "application/x-ndjson", lines(&first)).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!((&answer["records"], &answer["accepted"], &answer["duplicates"]), (&json!(1), &json!(1), &json!(0)));
    assert_eq!(answer["rejected"], json!([]));
    let card = CardId::of(&record);
    let shadow = s.state.store().card_shadow(card).await.unwrap().expect("a shadow");
    assert_eq!(shadow.balance_fen(), Some(5_000), "the card's balance after the load");

    // The same batch again: its first answer (200); the record in another batch: a duplicate.
    let (status, again) = upload(&s, &key, "application/x-ndjson", lines(&first)).await;
    assert_eq!((status, &again), (StatusCode::OK, &answer));
    let (status, dup) =
        upload(&s, &key, BINARY_MEDIA_TYPE, batch("B2", vec![record.clone()]).to_binary().unwrap()).await;
    assert_eq!((status, &dup["accepted"], &dup["duplicates"]), (StatusCode::CREATED, &json!(0), &json!(1)), "{dup}");

    // Forged copies (another amount and terminal transaction number, the old TAC): rejected with
    // the reason; at the third failure the policy lists the card.
    let forged: Vec<TapRecord> = (1..=3)
        .map(|n| TapRecord { amount_fen: 9_000 + n, terminal_transaction_number: 900 + n, ..record.clone() })
        .collect();
    let (status, answer) = upload(&s, &key, "application/x-ndjson", lines(&batch("B3", forged))).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let rejected = answer["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 3, "{answer}");
    assert!(rejected[0]["reason"].as_str().unwrap().contains("TAC"), "{answer}");
    let flags = answer["flags"].as_array().unwrap();
    assert_eq!(flags.len(), 1, "{answer}");
    assert_eq!(flags[0]["hotlisted_at_version"], 1, "{answer}");
    let list = s.state.store().hotlist().await.unwrap();
    assert_eq!(list.entries().map(|c| c.card).collect::<Vec<_>>(), [card]);
    assert_eq!(s.state.store().card_shadow(card).await.unwrap().unwrap().balance_fen(), Some(5_000), "unchanged");
    // The queue's figures: four uploads answered (A, A again, B2, B3) of 1 + 1 + 1 + 3 records,
    // none failed, none held now.
    let response = yitong_server::router(s.state.clone())
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = String::from_utf8(response.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    // One service alone on its database: nothing prepared again.
    let lines = [
        "yitong_ingest_batches_total 4",
        "yitong_ingest_records_total 6",
        "yitong_ingest_failed_total 0",
        "yitong_ingest_retries_total 0",
    ];
    for line in lines {
        assert!(text.lines().any(|l| l == line), "{line} in {text}");
    }
    assert!(text.lines().any(|l| l == "yitong_ingest_records_held 0"), "{text}");

    // What the back office knows of the card: its balance, the TAC failures and the flag; a key
    // of another city does not see it (its issuer's card of that serial was never uploaded).
    let uri = format!("/v1/operator/cards/{serial}/shadow");
    let (status, shadow) = s.send_as(Some(&key), Method::GET, &uri, None).await;
    assert_eq!(status, StatusCode::OK, "{shadow}");
    assert_eq!(
        (&shadow["balance_fen"], &shadow["transactions"], &shadow["tac_failures"]),
        (&json!(5_000), &json!(1), &json!(3))
    );
    assert_eq!(shadow["flags"].as_array().map(Vec::len), Some(1), "{shadow}");
    let (_, shanghai) = access::new_operator_key(s.state.store(), s.state.cities(), "shanghai", "sh", 0).await.unwrap();
    let (status, _) = s.send_as(Some(shanghai.expose()), Method::GET, &uri, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = s.send_as(Some(&key), Method::GET, "/v1/operator/cards/XYZ/shadow", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // The day's report counts the load once: the platform's record and the host's upload of it.
    let (_, clearing) =
        access::new_operator_key(s.state.store(), s.state.cities(), access::CLEARING_HOUSE, "ch", 0).await.unwrap();
    let uri = "/v1/operator/settlement?date=2026-11-25";
    let (status, report) = s.send_as(Some(clearing.expose()), Method::GET, uri, None).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let host = &report["issuers"][0]["host_loads"];
    assert_eq!((&host["records"], &host["amount_fen"]), (&json!(1), &json!(5_000)), "{report}");
}

#[tokio::test]
async fn bad_uploads_are_refused() {
    let s = service().await;
    let (_, beijing) = access::new_operator_key(s.state.store(), s.state.cities(), "beijing", "g", 0).await.unwrap();
    let (_, shanghai) = access::new_operator_key(s.state.store(), s.state.cities(), "shanghai", "g", 0).await.unwrap();
    let (beijing, shanghai) = (beijing.expose().to_owned(), shanghai.expose().to_owned());
    let empty = lines(&batch("B1", vec![]));
    let (status, error) = upload(&s, &shanghai, "application/x-ndjson", empty.clone()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a Beijing gate's batch from Shanghai's key: {error}");
    assert!(error["message"].as_str().unwrap().contains("not a terminal of shanghai"), "{error}");
    let (status, _) = upload(&s, &beijing, "text/plain", empty).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (status, error) = upload(&s, &beijing, "application/x-ndjson", b"{\"batch_id\":\"B\"}\n".to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error["message"].as_str().unwrap().contains("line 1: not a batch header"), "{error}");
    let (status, _) = upload(&s, &beijing, BINARY_MEDIA_TYPE, b"YTB1\x01".to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = upload(&s, "yto_nope", "application/x-ndjson", Vec::new()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_platforms_own_loads_reach_the_shadow_without_an_upload() {
    let s = service().await;
    let issued = issue(&s, "FEE-0001").await;
    let serial = issued["card"]["serial"].as_str().unwrap().to_owned();
    let mut se = SecureElement::new(issued["image_hex"].as_str().unwrap());
    top_up(&s, &s.token, &mut se, &serial, "TOP-0001", 5_000).await;
    top_up(&s, &s.token, &mut se, &serial, "TOP-0002", 2_000).await;
    let (_, key) = access::new_operator_key(s.state.store(), s.state.cities(), "beijing", "desk", 0).await.unwrap();
    let key = key.expose().to_owned();

    // No gate uploaded anything: reading the shadow feeds the two loads the platform made.
    let uri = format!("/v1/operator/cards/{serial}/shadow");
    let (status, shadow) = s.send_as(Some(&key), Method::GET, &uri, None).await;
    assert_eq!(status, StatusCode::OK, "{shadow}");
    assert_eq!((&shadow["balance_fen"], &shadow["transactions"]), (&json!(7_000), &json!(2)), "{shadow}");
    assert_eq!(shadow["flags"], json!([]), "{shadow}");
    // Read again: fed once.
    let (_, again) = s.send_as(Some(&key), Method::GET, &uri, None).await;
    assert_eq!(again, shadow);
    let store = s.state.store();
    let fed = store.feed_platform_records(&s.state.services().tac, s.state.now(), s.state.now_ms(), i64::MIN).await;
    let fed = fed.unwrap();
    assert_eq!((fed.fed, fed.failed.len()), (0, 0), "nothing left to feed");

    // A gate's batch may not take the platform's batch IDs.
    let load = s.state.store().ota_loads(&MerchantOrderId::parse("TOP-0002").unwrap()).await.unwrap();
    let squatter = batch(&format!("platform:{}", load[0].record.tap_id()), vec![]);
    let (status, refused) = upload(&s, &key, "application/x-ndjson", lines(&squatter)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert!(refused["message"].as_str().unwrap_or("").contains("platform:"), "{refused}");

    // The load host uploading the same record later: a duplicate, not counted twice.
    let (status, answer) =
        upload(&s, &key, "application/x-ndjson", lines(&batch("H1", vec![load[0].record.clone()]))).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!((&answer["accepted"], &answer["duplicates"]), (&json!(0), &json!(1)), "{answer}");
    let (_, after) = s.send_as(Some(&key), Method::GET, &uri, None).await;
    assert_eq!(after["balance_fen"], json!(7_000), "{after}");

    // The ledger's 7,000 fen of liability are the 7,000 the card shows (no gate charged it).
    let (_, clearing) =
        access::new_operator_key(s.state.store(), s.state.cities(), access::CLEARING_HOUSE, "ch", 0).await.unwrap();
    let (status, agreement) =
        s.send_as(Some(clearing.expose()), Method::GET, "/v1/operator/ledger/agreement", None).await;
    assert_eq!(status, StatusCode::OK, "{agreement}");
    assert_eq!(agreement["agree"], json!(true), "{agreement}");
    let sums = [&agreement["cards"], &agreement["agreeing"], &agreement["ledger_fen"], &agreement["cleared_fen"]];
    assert_eq!(sums, [&json!(1), &json!(1), &json!(7_000), &json!(7_000)], "{agreement}");
}
