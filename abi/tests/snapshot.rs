//! Pins the fork ABI: `describe()` must equal the checked-in
//! `abi/snapshot.json`. `BLESS=1 cargo test -p forkify-abi --test snapshot`
//! rewrites the snapshot.

use std::path::PathBuf;

fn snapshot_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("snapshot.json")
}

fn rendered() -> String {
    let mut s =
        serde_json::to_string_pretty(&forkify_abi::describe()).expect("a JSON value serializes");
    s.push('\n');
    s
}

#[test]
fn abi_matches_the_checked_in_snapshot() {
    let path = snapshot_path();
    let now = rendered();
    if std::env::var_os("BLESS").is_some_and(|v| v == "1") {
        std::fs::write(&path, &now)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        return;
    }
    let pinned = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e}\n(create it with BLESS=1 cargo test -p forkify-abi --test snapshot)",
            path.display()
        )
    });
    if pinned != now {
        let old: serde_json::Value =
            serde_json::from_str(&pinned).unwrap_or(serde_json::Value::Null);
        let new = forkify_abi::describe();
        panic!(
            "the fork ABI changed: `forkify_abi::describe()` no longer matches {}.\n\
             Any change to the ABI (a name, a signature, an offset, a state, the section) is a \
             breaking change for every host: edit the snapshot deliberately and bump ABI_VERSION \
             (abi/src/layout.rs) and abi/ABI.md together, then run \
             `BLESS=1 cargo test -p forkify-abi --test snapshot`.\n\
             same JSON, different text: {}\n--- snapshot\n{pinned}\n--- describe()\n{now}",
            path.display(),
            old == new,
        );
    }
}

#[test]
fn snapshot_records_the_current_abi_version() {
    let pinned = std::fs::read_to_string(snapshot_path()).unwrap_or_default();
    let json: serde_json::Value = serde_json::from_str(&pinned).unwrap_or(serde_json::Value::Null);
    assert_eq!(
        json["abi_version"],
        serde_json::json!(forkify_abi::ABI_VERSION),
        "abi/snapshot.json pins another ABI_VERSION: edit the snapshot deliberately and bump ABI_VERSION"
    );
}
