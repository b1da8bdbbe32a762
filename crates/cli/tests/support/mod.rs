//! A temporary folder to run `yitong` in, with a key set and a loaded card.
#![allow(dead_code)]

pub mod server;

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

pub struct Dir {
    pub dir: tempfile::TempDir,
}

impl Dir {
    pub fn new() -> Self {
        Dir { dir: tempfile::tempdir().unwrap() }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// `yitong args` in this folder, which is also its data directory (state of reader taps).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = yitong();
        command.args(args).current_dir(self.dir.path()).env("YITONG_DATA_DIR", self.dir.path());
        command
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.ok(args)).unwrap()
    }

    /// A card of serial `serial` issued with the key set `keys` into `out`, valid 2026–2030.
    pub fn issue(&self, keys: &str, serial: &str, out: &str) {
        let args = ["card", "issue", "--keys", keys, "--serial", serial, "--out", out];
        self.ok(&[&args[..], &["--valid-from", "2026-01-01", "--valid-to", "2030-12-31"]].concat());
    }

    /// A key set and a card loaded with `yuan`.
    pub fn card(&self, yuan: &str) {
        self.ok(&["keys", "new", "--out", "keys.toml"]);
        self.issue("keys.toml", "10000000000000123456", "card.se");
        if yuan != "0" {
            self.ok(&[
                "card",
                "load",
                "card.se",
                "--keys",
                "keys.toml",
                "--amount",
                yuan,
                "--at",
                "2026-11-25 07:00:00",
                "--records",
                "taps.jsonl",
            ]);
        }
    }

    /// Taps the card image at a Beijing metro gate.
    pub fn tap(&self, station: &str, at: &str, extra: &[&str]) -> Output {
        self.tap_from(&["card.se"], station, at, extra)
    }

    /// Taps a card given by `source` (an image, or `--reader NAME`) at a Beijing metro gate,
    /// recording to `taps.jsonl`, with JSON output.
    pub fn tap_from(&self, source: &[&str], station: &str, at: &str, extra: &[&str]) -> Output {
        let mut args = vec!["gate", "tap"];
        args.extend_from_slice(source);
        args.extend_from_slice(&["--keys", "keys.toml", "--city", "beijing", "--station", station]);
        args.extend_from_slice(&["--at", at, "--records", "taps.jsonl", "--json"]);
        args.extend_from_slice(extra);
        self.run(&args)
    }
}

/// The binary under test.
pub fn yitong() -> Command {
    Command::new(env!("CARGO_BIN_EXE_yitong"))
}

/// Clearing records written to `taps.jsonl`.
pub fn records(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// Says why a test cannot run, past libtest's output capture, so that the log shows it; under
/// `YITONG_REQUIRE_EXTERNAL=1` (set by `.ci/run`) fails the test instead, so that a run cannot
/// pass by skipping. The caller returns after it.
pub fn skip(why: &str) {
    use std::io::Write;
    if std::env::var_os("YITONG_REQUIRE_EXTERNAL").is_some_and(|v| v == "1") {
        panic!("cannot run: {why} (YITONG_REQUIRE_EXTERNAL=1 makes a skip a failure)");
    }
    let _ = writeln!(std::io::stderr(), "skipped: {why}");
}
