//! `yitong gate sync`: what a gate does when it has a link — upload the clearing records its
//! terminals hold (`POST /v1/clearing/batches`, one batch per terminal) and fetch what changed
//! in the hotlist since the copy it holds (`GET /v1/hotlist?since=`), written where `gate tap
//! --hotlist` reads it.
//!
//! The terminal state file is locked for the whole sync. A batch's ID is made from its terminal
//! and the first and last transaction numbers it holds, so a batch whose answer was lost is sent
//! again under the same ID and the back office answers it as the first time; records leave the
//! state file only once the back office has answered.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use serde::Deserialize;
use serde_json::Value;
use yitong_clearing::batch::{Batch, BatchHeader};
use yitong_clearing::hotlist::{Actor, Change, ChangeKind, Delta, GateHotlist};
use yitong_clearing::shadow::CardId;
use yitong_profile::DateTime;

use crate::terminals::{state_path, TerminalsFile};
use crate::Incomplete;

/// The environment variable holding the operator key a gate syncs with.
pub const OPERATOR_KEY_ENV: &str = "YITONG_OPERATOR_KEY";
/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Largest answer read, bytes.
const ANSWER_BYTES_MAX: u64 = 16 * 1024 * 1024;

/// Arguments of `yitong gate sync`.
#[derive(Args)]
pub struct SyncArgs {
    /// Terminal state file (records not yet uploaded, and the hotlist copy) [default: the data
    /// directory's].
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// The back office's URL [default: $YITONG_SERVER, else http://127.0.0.1:8080].
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// The operator API key of the gates' city [default: $YITONG_OPERATOR_KEY].
    #[arg(long, value_name = "KEY")]
    pub key: Option<String>,
    /// The operator running the gates, named in each batch.
    #[arg(long, default_value = "gate")]
    pub operator: String,
    /// Write the hotlist (one serial per line) here, for `gate tap --hotlist`.
    #[arg(long)]
    pub hotlist: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// The back office's hotlist delta, as `GET /v1/hotlist` answers it.
#[derive(Deserialize)]
struct DeltaBody {
    from: u64,
    to: u64,
    added: Vec<AddedBody>,
    removed: Vec<CardBody>,
}

#[derive(Deserialize)]
struct CardBody {
    issuer_id: String,
    serial: String,
}

#[derive(Deserialize)]
struct AddedBody {
    version: u64,
    issuer_id: String,
    serial: String,
    reason: String,
    by: String,
    at: String,
}

fn card(issuer_id: &str, serial: &str) -> anyhow::Result<CardId> {
    let bytes = |text: &str, n: usize| hex::decode(text).ok().filter(|b| b.len() == n);
    match (bytes(issuer_id, 8), bytes(serial, 10)) {
        (Some(issuer), Some(serial)) => Ok(CardId {
            issuer_id: issuer.try_into().map_err(|_| anyhow::anyhow!("issuer ID"))?,
            card_serial: serial.try_into().map_err(|_| anyhow::anyhow!("serial"))?,
        }),
        _ => bail!("the hotlist names a card `{issuer_id}/{serial}` that is not hex of the right length"),
    }
}

impl DeltaBody {
    fn into_delta(self) -> anyhow::Result<Delta> {
        let added = self
            .added
            .into_iter()
            .map(|a| {
                let by = if a.by == "policy" { Actor::Policy } else { Actor::Operator { name: a.by } };
                let at = DateTime::parse(&a.at).map_err(|_| anyhow::anyhow!("the hotlist's time `{}`", a.at))?;
                Ok(Change {
                    version: a.version,
                    card: card(&a.issuer_id, &a.serial)?,
                    kind: ChangeKind::Added,
                    reason: a.reason,
                    by,
                    at,
                })
            })
            .collect::<anyhow::Result<_>>()?;
        let removed = self.removed.iter().map(|c| card(&c.issuer_id, &c.serial)).collect::<anyhow::Result<_>>()?;
        Ok(Delta { from: self.from, to: self.to, added, removed })
    }
}

pub fn sync(args: &SyncArgs) -> anyhow::Result<()> {
    let server = args
        .server
        .clone()
        .or_else(|| std::env::var("YITONG_SERVER").ok())
        .unwrap_or_else(|| "http://127.0.0.1:8080".to_owned());
    let server = server.trim_end_matches('/').to_owned();
    let key =
        args.key.clone().or_else(|| std::env::var(OPERATOR_KEY_ENV).ok()).filter(|k| !k.trim().is_empty()).ok_or_else(
            || anyhow::anyhow!("--key: the operator key of the gates' city is needed (or ${OPERATOR_KEY_ENV})"),
        )?;
    let agent: ureq::Agent =
        ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(REQUEST_TIMEOUT)).build().into();
    let state_path = state_path(args.state.as_deref())?;
    let (_lock, mut terminals) = TerminalsFile::read_locked(&state_path)?;

    let mut uploads = Vec::new();
    let mut failed = Vec::new();
    let ids: Vec<String> = terminals.terminals.keys().cloned().collect();
    for id in ids {
        let Some(entry) = terminals.terminals.get(&id) else { continue };
        let outbox = &entry.state.outbox;
        let (Some(first), Some(last)) = (outbox.first(), outbox.last()) else { continue };
        let gate: [u8; 6] = hex::decode(&id)
            .ok()
            .and_then(|b| b.try_into().ok())
            .with_context(|| format!("{}: terminal `{id}` is not a terminal ID", state_path.display()))?;
        let batch_id = format!("{id}-{}-{}", first.terminal_transaction_number, last.terminal_transaction_number);
        let batch = Batch {
            header: BatchHeader { batch_id: batch_id.clone(), gate, operator: args.operator.clone() },
            records: outbox.clone(),
        };
        let body = batch.to_json_lines().context("the batch as JSON Lines")?;
        let sent = agent
            .post(format!("{server}/v1/clearing/batches"))
            .header("Authorization", format!("Bearer {key}"))
            .header("Content-Type", "application/x-ndjson")
            .send(body.as_bytes());
        match answer(sent, &server, "POST /v1/clearing/batches") {
            Ok(answer) => {
                // Taken (or taken before): the records leave the terminal.
                let sent_taps: Vec<_> = batch.records.iter().map(|r| r.tap_id()).collect();
                if let Some(entry) = terminals.terminals.get_mut(&id) {
                    entry.state.outbox.retain(|r| !sent_taps.contains(&r.tap_id()));
                }
                terminals.write(&state_path)?;
                uploads.push(serde_json::json!({"terminal": id, "batch_id": batch_id, "answer": answer}));
            }
            Err(error) => failed.push(format!("terminal {id}: {error:#}")),
        }
    }

    let held = terminals.hotlist.version;
    let sent =
        agent.get(format!("{server}/v1/hotlist?since={held}")).header("Authorization", format!("Bearer {key}")).call();
    let hotlist = match answer(sent, &server, "GET /v1/hotlist")
        .and_then(|body| serde_json::from_value::<DeltaBody>(body).context("the hotlist delta"))
        .and_then(DeltaBody::into_delta)
    {
        Ok(delta) => {
            let (added, removed) = (delta.added.len(), delta.removed.len());
            terminals.hotlist.apply(&delta).map_err(|e| anyhow::anyhow!("hotlist: {e}"))?;
            terminals.write(&state_path)?;
            Some((added, removed))
        }
        Err(error) => {
            failed.push(format!("hotlist: {error:#}"));
            None
        }
    };
    if let Some(path) = &args.hotlist {
        write_hotlist(path, &terminals.hotlist)?;
    }

    if args.json {
        let report = serde_json::json!({
            "uploads": uploads,
            "hotlist": {"version": terminals.hotlist.version, "cards": terminals.hotlist.cards.len(),
                        "added": hotlist.map(|h| h.0), "removed": hotlist.map(|h| h.1)},
            "failed": failed,
        });
        println!("{}", serde_json::to_string_pretty(&report).context("the report as JSON")?);
    } else {
        for upload in &uploads {
            let a = &upload["answer"];
            println!(
                "terminal {}: batch {} — {} records: {} accepted, {} duplicates, {} rejected",
                upload["terminal"].as_str().unwrap_or(""),
                upload["batch_id"].as_str().unwrap_or(""),
                a["records"],
                a["accepted"],
                a["duplicates"],
                a["rejected"].as_array().map_or(0, Vec::len)
            );
        }
        if let Some((added, removed)) = hotlist {
            println!(
                "hotlist: version {} ({} cards; {added} added, {removed} removed)",
                terminals.hotlist.version,
                terminals.hotlist.cards.len()
            );
        }
        for failure in &failed {
            eprintln!("yitong: {failure}");
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Incomplete(format!("{} of the sync failed; what was not sent stays in the state file", failed.len()))
            .into())
    }
}

/// A 2xx answer's JSON, or the service's error.
fn answer(
    sent: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    server: &str,
    request: &str,
) -> anyhow::Result<Value> {
    let mut response = sent.map_err(|e| anyhow::anyhow!("{server} does not answer: {e}"))?;
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .with_config()
        .limit(ANSWER_BYTES_MAX)
        .read_to_string()
        .map_err(|e| anyhow::anyhow!("{server}: {e}"))?;
    if !(200..300).contains(&status) {
        let message = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_owned))
            .unwrap_or_else(|| body.chars().take(200).collect());
        bail!("{request}: {status}: {message}");
    }
    serde_json::from_str(&body).with_context(|| format!("{request}: not JSON"))
}

/// The hotlist as `gate tap --hotlist` reads it: one serial per line, written atomically.
fn write_hotlist(path: &std::path::Path, hotlist: &GateHotlist) -> anyhow::Result<()> {
    let mut text = format!("# Yitong hotlist, version {}: refused card serials\n", hotlist.version);
    for serial in hotlist.serials() {
        text.push_str(&hex::encode_upper(serial));
        text.push('\n');
    }
    yitong_files::write_atomically(path, text.as_bytes()).with_context(|| format!("--hotlist: {}", path.display()))
}
