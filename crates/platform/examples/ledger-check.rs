//! Proves a platform database's ledger: `cargo run -p yitong-platform --example ledger-check --
//! sqlite:DATA_DIR/platform.sqlite` (or a `postgres://` URL). Prints the check (`--json` for
//! JSON) and exits 1 when the ledger does not balance or disagrees with the cards and orders,
//! 2 when the database cannot be read. (The `yitong` CLI gets its own command with the service.)

use std::process::ExitCode;

use yitong_platform::store::Store;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let json = args.iter().any(|arg| arg == "--json");
    let Some(url) = args.iter().find(|arg| !arg.starts_with("--")) else {
        eprintln!("usage: ledger-check [--json] sqlite:PATH | postgres://USER@HOST:PORT/DATABASE");
        return ExitCode::from(2);
    };
    let check = match Store::open(url).await {
        Ok(store) => store.check_ledger().await,
        Err(error) => Err(error),
    };
    match check {
        Ok(check) => {
            if json {
                println!("{}", serde_json::to_string_pretty(&check).expect("a check serializes"));
            } else {
                print!("{check}");
            }
            if check.is_ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(error) => {
            eprintln!("ledger-check: {url}: {error}");
            ExitCode::from(2)
        }
    }
}
