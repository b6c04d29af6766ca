//! Pins the JavaScript host's copy of the ABI to the snapshot: the
//! constants of `templates/host/forkify-host.mjs` (version, section name and
//! field offsets, the default fork import, states, control exports, the
//! abort errno) must equal what `abi/snapshot.json` records. The host is one
//! dependency-free file users copy, so it cannot import the Rust constants;
//! this test is what keeps the two in step.

use std::path::PathBuf;

use serde_json::Value;

fn host_source() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../templates/host/forkify-host.mjs");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn snapshot() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("snapshot.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).expect("snapshot.json is JSON")
}

/// The value of `const NAME = …;` (exported or not) in `js`, as JSON: a
/// number, a string, an array or an `Object.freeze({…})` of literals.
fn constant(js: &str, name: &str) -> Value {
    let key = format!("const {name} = ");
    let start = js
        .find(&key)
        .unwrap_or_else(|| panic!("forkify-host.mjs has no `const {name}`"))
        + key.len();
    let mut text = String::new();
    let (mut depth, mut in_str) = (0i32, None::<char>);
    for c in js[start..].chars() {
        match in_str {
            Some(q) if c == q => in_str = None,
            Some(_) => {}
            None => match c {
                '"' | '\'' => in_str = Some(c),
                '(' | '[' | '{' => depth += 1,
                ')' | ']' | '}' => depth -= 1,
                ';' if depth == 0 => break,
                _ => {}
            },
        }
        text.push(c);
    }
    let text = text.trim();
    let text = text
        .strip_prefix("Object.freeze(")
        .and_then(|t| t.strip_suffix(')'))
        .unwrap_or(text);
    let json = to_json(text);
    serde_json::from_str(&json)
        .unwrap_or_else(|e| panic!("`const {name}` is not a plain literal ({e}): {json}"))
}

/// Quotes bare object keys, turns single quotes into double ones and drops
/// trailing commas: enough for the host's literal constants.
fn to_json(js: &str) -> String {
    let chars: Vec<char> = without_comments(js).chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' {
            out.push('"');
            i += 1;
            while i < chars.len() && chars[i] != c {
                out.push(chars[i]);
                i += 1;
            }
            out.push('"');
            i += 1;
        } else if c.is_ascii_alphabetic() || c == '_' {
            let begin = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let word: String = chars[begin..i].iter().collect();
            let next = chars[i..].iter().find(|c| !c.is_whitespace());
            if next == Some(&':') {
                out.push_str(&format!("\"{word}\""));
            } else {
                out.push_str(&word);
            }
        } else if c == ',' {
            let next = chars[i + 1..].iter().find(|c| !c.is_whitespace());
            if !matches!(next, Some('}') | Some(']')) {
                out.push(',');
            }
            i += 1;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// `js` without its `//` comments (none of the constants has `//` in a string).
fn without_comments(js: &str) -> String {
    js.lines()
        .map(|l| l.find("//").map_or(l, |i| &l[..i]))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn js_host_constants_match_the_snapshot() {
    let js = host_source();
    let snap = snapshot();
    let wrong = std::cell::RefCell::new(Vec::new());
    let check = |what: &str, js_value: Value, pinned: &Value| {
        if js_value != *pinned {
            wrong.borrow_mut().push(format!(
                "{what}: forkify-host.mjs has {js_value}, the snapshot {pinned}"
            ));
        }
    };
    check(
        "ABI_VERSION",
        constant(&js, "ABI_VERSION"),
        &snap["abi_version"],
    );
    check(
        "SECTION_NAME",
        constant(&js, "SECTION_NAME"),
        &snap["section"]["name"],
    );
    check(
        "DEFAULT_FORK_IMPORT",
        constant(&js, "DEFAULT_FORK_IMPORT"),
        &snap["fork_import_default"],
    );
    check("State", constant(&js, "State"), &snap["states"]);

    let fields = snap["section"]["fields"]
        .as_array()
        .expect("section fields");
    let pinned_fields: serde_json::Map<String, Value> = fields
        .iter()
        .map(|f| {
            (
                f["name"].as_str().unwrap_or("").to_string(),
                f["offset"].clone(),
            )
        })
        .collect();
    check(
        "SECTION_FIELDS",
        constant(&js, "SECTION_FIELDS"),
        &Value::Object(pinned_fields),
    );
    let json_offset = fields
        .iter()
        .find(|f| f["name"] == "json")
        .map(|f| f["offset"].clone());
    check(
        "SECTION_HEADER_SIZE",
        constant(&js, "SECTION_HEADER_SIZE"),
        &json_offset.unwrap_or(Value::Null),
    );

    let exports: Vec<Value> = snap["exports"]
        .as_array()
        .expect("exports")
        .iter()
        .map(|e| serde_json::json!([e["name"], e["params"], e["results"]]))
        .collect();
    check(
        "CONTROL_EXPORTS",
        constant(&js, "CONTROL_EXPORTS"),
        &Value::Array(exports.clone()),
    );
    let prefix = constant(&js, "EXPORT_PREFIX");
    let prefix = prefix.as_str().unwrap_or("");
    if exports
        .iter()
        .any(|e| !e[0].as_str().unwrap_or("").starts_with(prefix))
        || prefix.is_empty()
    {
        wrong.borrow_mut().push(format!(
            "EXPORT_PREFIX `{prefix}` is not the prefix of every control export"
        ));
    }
    let enomem = constant(&js, "Errno")["ENOMEM"].clone();
    let abort = snap["abort_errno"].as_i64().map(|v| Value::from(-v));
    check(
        "Errno.ENOMEM (negated: abort_errno)",
        enomem,
        &abort.unwrap_or(Value::Null),
    );

    let wrong = wrong.into_inner();
    assert!(
        wrong.is_empty(),
        "templates/host/forkify-host.mjs disagrees with abi/snapshot.json:\n  {}\n\
         Change the host and the snapshot together (and ABI_VERSION with them).",
        wrong.join("\n  ")
    );
}

#[test]
fn the_literal_reader_reads_what_the_host_writes() {
    assert_eq!(
        serde_json::from_str::<Value>(&to_json("{ NORMAL: 0, 'a': \"b\", }")).unwrap(),
        serde_json::json!({"NORMAL": 0, "a": "b"})
    );
    assert_eq!(
        serde_json::from_str::<Value>(&to_json("[\n  [\"x\", [\"ptr\"], []], // c\n]")).unwrap(),
        serde_json::json!([["x", ["ptr"], []]])
    );
}
