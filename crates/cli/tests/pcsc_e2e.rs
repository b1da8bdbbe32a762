//! End to end through the real PC/SC stack: the card image served to pcscd's vpcd driver by
//! `yitong card serve-vpcd`, the gate tapping it with `yitong gate tap --reader`, `yitong card
//! read`, and an independent pyscard client checking what the gate wrote.
//!
//! Compiled with the `pcsc` feature only (`cargo test -p yitong-cli --features pcsc --test
//! pcsc_e2e`). Needs pcscd with vsmartcard-vpcd running and pyscard (`.ci/run` provides them);
//! otherwise each test prints why it is skipped, or fails under `YITONG_REQUIRE_EXTERNAL=1`. The
//! tests share the reader "Virtual PCD 00 00" and run one at a time.
#![cfg(feature = "pcsc")]

mod support;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{records, skip, yitong, Dir};

const READER: &str = "Virtual PCD 00 00";
const PORT: &str = "35963";

static READER_LOCK: Mutex<()> = Mutex::new(());

/// Why these tests cannot run here, if they cannot.
fn skip_reason() -> Option<String> {
    if !Path::new("/run/pcscd/pcscd.comm").exists() {
        return Some("pcscd is not running (no /run/pcscd/pcscd.comm)".into());
    }
    let out = yitong().args(["reader", "list", "--json"]).output().unwrap();
    if !out.status.success() {
        return Some(format!("`yitong reader list` failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    let readers: Vec<String> = serde_json::from_slice(&out.stdout).unwrap_or_default();
    if !readers.iter().any(|r| r == READER) {
        return Some(format!("no reader {READER:?} (is vsmartcard-vpcd installed?): {readers:?}"));
    }
    None
}

/// Taps the card on the virtual reader.
fn tap(d: &Dir, station: &str, at: &str) -> Output {
    d.tap_from(&["--reader", READER], station, at, &["--wait", "15"])
}

/// Serves the card to vpcd until dropped.
fn serve(d: &Dir, extra: &[&str]) -> Served {
    let child = yitong()
        .args(["card", "serve-vpcd", "card.se", "--port", PORT])
        .args(extra)
        .current_dir(d.dir.path())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Served(child)
}

struct Served(Child);

impl Served {
    /// Waits for a served card that vanished on purpose.
    fn wait_exit(&mut self, timeout: Duration) {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if self.0.try_wait().unwrap().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("serve-vpcd did not exit");
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        // Let pcscd see the card leave before the next test serves one.
        std::thread::sleep(Duration::from_millis(600));
    }
}

/// The shared virtual reader, held until dropped; `None` (with the reason printed) where these
/// tests cannot run.
fn take_reader() -> Option<std::sync::MutexGuard<'static, ()>> {
    let guard = READER_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    match skip_reason() {
        Some(why) => {
            skip(&why);
            None
        }
        None => Some(guard),
    }
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn entry_and_exit_through_pcsc() {
    let Some(_reader) = take_reader() else { return };
    let w = Dir::new();
    w.card("20");
    let _served = serve(&w, &[]);
    let entry = json(&tap(&w, "Xidan", "2026-11-25 08:00:00"));
    assert_eq!((entry["result"].as_str(), entry["amount_fen"].as_u64()), (Some("entry"), Some(0)));
    // Sample network: 西单 - 国贸 6,200 m, 4 yuan.
    let exit = json(&tap(&w, "Guomao", "2026-11-25 08:30:00"));
    assert_eq!(
        (exit["result"].as_str(), exit["amount_fen"].as_u64(), exit["balance_fen"].as_i64()),
        (Some("exit"), Some(400), Some(1_600))
    );
    assert_eq!(exit["apdus"], 6);
    // The image on disk has the commit.
    let shown: Value = serde_json::from_str(&w.ok(&["card", "show", "card.se", "--json"])).unwrap();
    assert_eq!(shown["balance_fen"], 1_600);
    // `card read` decodes the served card.
    let read: Value = serde_json::from_str(&w.ok(&["card", "read", "--reader", READER, "--json"])).unwrap();
    assert_eq!((read["scheme"].as_str(), read["balance_fen"].as_i64()), (Some("T-Union"), Some(1_600)));
    assert_eq!(read["card_number"], "0000000000000123456");
}

#[test]
fn card_killed_mid_transaction_is_recovered_without_a_second_charge() {
    let Some(_reader) = take_reader() else { return };
    let w = Dir::new();
    w.card("20");
    {
        let _served = serve(&w, &[]);
        json(&tap(&w, "Xidan", "2026-11-25 08:00:00"));
    }
    {
        let mut vanishing = serve(&w, &["--vanish-after-debit"]);
        let lost = tap(&w, "Guomao", "2026-11-25 08:30:00");
        assert_eq!(lost.status.code(), Some(1), "{}", String::from_utf8_lossy(&lost.stderr));
        assert_eq!(json(&lost)["result"], "interrupted");
        vanishing.wait_exit(Duration::from_secs(10));
    }
    assert_eq!(records(&w.path("taps.jsonl")).len(), 2, "no exit record while in doubt");
    let _served = serve(&w, &[]);
    let again = json(&tap(&w, "Guomao", "2026-11-25 08:30:05"));
    assert_eq!(
        (again["result"].as_str(), again["amount_fen"].as_u64(), again["recovered"].as_bool()),
        (Some("exit"), Some(400), Some(true))
    );
    assert_eq!(again["balance_fen"], 1_600);
    let records = records(&w.path("taps.jsonl"));
    assert_eq!(records.len(), 3);
    assert_eq!((records[2]["kind"].as_str(), records[2]["status"].as_str()), (Some("exit"), Some("recovered")));
    let shown: Value = serde_json::from_str(&w.ok(&["card", "show", "card.se", "--json"])).unwrap();
    assert_eq!(shown["balance_fen"], 1_600, "charged once");
}

/// A python3 that has pyscard, or `None` with the reason given to [`skip`].
fn pyscard_python() -> Option<&'static str> {
    let python = ["/usr/bin/python3", "python3"]
        .into_iter()
        .find(|p| Command::new(p).args(["-c", "import smartcard"]).output().is_ok_and(|o| o.status.success()));
    if python.is_none() {
        skip("no python3 with pyscard (Debian python3-pyscard)");
    }
    python
}

/// Regression: `serve-vpcd` left a one-byte APDU unanswered, and the reader hung until the
/// server restarted. Through pcscd and vpcd, messages too short for an APDU get `6700`, and the
/// card still answers the APDUs after them.
#[test]
fn short_messages_through_vpcd_are_answered_6700() {
    let Some(_reader) = take_reader() else { return };
    let Some(python) = pyscard_python() else { return };
    let w = Dir::new();
    w.card("0");
    let _served = serve(&w, &[]);
    // The card may take a moment to appear (and pcscd to forget the last test's): retry the
    // connection and SELECT, then send the short messages and GET BALANCE.
    let script = r#"
import sys, time
from smartcard.System import readers
def transmit(connection, apdu):
    data, sw1, sw2 = connection.transmit(list(bytes.fromhex(apdu)))
    return bytes(data + [sw1, sw2]).hex().upper()
reader = next(r for r in readers() if str(r) == sys.argv[1])
deadline = time.time() + 15
while True:
    try:
        connection = reader.createConnection()
        connection.connect()
        print(transmit(connection, "00A4040008A000000632010105"), flush=True)
        break
    except Exception:
        if time.time() > deadline:
            raise
        time.sleep(0.2)
for apdu in ("80", "805C", "805C00", "805C000204"):
    print(transmit(connection, apdu), flush=True)
"#;
    let mut client = Command::new(python).args(["-c", script, READER]).stdout(Stdio::piped()).spawn().unwrap();
    let start = Instant::now();
    while client.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(20) {
            let _ = client.kill();
            let out = client.wait_with_output().unwrap();
            panic!("the reader hung; answers so far: {}", String::from_utf8_lossy(&out.stdout));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = client.wait_with_output().unwrap();
    let answers: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
    assert!(out.status.success(), "{answers:?}");
    assert!(answers[0].starts_with("6F") && answers[0].ends_with("9000"), "SELECT: {answers:?}");
    assert_eq!(answers[1..], ["6700", "6700", "6700", "000000009000"]);
}

#[test]
fn independent_pyscard_client_reads_what_the_gate_wrote() {
    let Some(_reader) = take_reader() else { return };
    let Some(python) = pyscard_python() else { return };
    let w = Dir::new();
    w.card("30");
    let _served = serve(&w, &[]);
    json(&tap(&w, "Pingguoyuan", "2026-11-25 08:00:00"));
    json(&tap(&w, "Guomao", "2026-11-25 08:45:00"));
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/pyscard_client.py");
    let out = Command::new(python).args([script, READER]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let seen: Value = serde_json::from_slice(&out.stdout).unwrap();
    // 苹果园 - 国贸 is 23,900 m on the sample network: 6 yuan.
    assert_eq!(seen["balance_fen"], 3_000 - 600);
    let records = records(&w.path("taps.jsonl"));
    let log = seen["log"].as_array().unwrap();
    assert_eq!(log.len(), records.len());
    // Newest first on the card, oldest first in the clearing file.
    for (card, record) in log.iter().zip(records.iter().rev()) {
        assert_eq!(card["counter"], record["counter"]);
        assert_eq!(card["amount_fen"], record["amount_fen"]);
        assert_eq!(card["type"], record["transaction_type"]);
        assert_eq!(card["terminal_id"], record["terminal_id"]);
    }
}
