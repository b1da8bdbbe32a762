//! The reason this crate exists: a gate (`yitong-terminal`) links the fare engine without the
//! importers' JSON5 and CSV readers. Asks `cargo tree` for the gate's normal dependencies.

use std::process::Command;

#[test]
fn the_terminal_depends_on_neither_json5_nor_csv() {
    let out = Command::new(env!("CARGO"))
        .args(["tree", "--offline", "-p", "yitong-terminal", "-e", "normal", "--prefix", "none", "--format", "{p}"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo runs the tests, so it can be run");
    let tree = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "cargo tree failed: {}", String::from_utf8_lossy(&out.stderr));
    let crates: Vec<&str> = tree.lines().filter_map(|l| l.split_whitespace().next()).collect();
    assert!(crates.contains(&"yitong-fare"), "{tree}");
    for importer in ["json5", "csv", "yitong-fare-import"] {
        assert!(!crates.contains(&importer), "yitong-terminal links {importer}:\n{tree}");
    }
}
