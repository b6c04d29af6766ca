//! The project's forkify configuration: `[workspace.metadata.forkify]`
//! defaults with `[package.metadata.forkify]` overrides, keys `fork-imports`,
//! `targets` and `abi`. Parsing only: unknown keys become warnings, wrong
//! types errors that name the key and the manifest. No I/O.

use camino::{Utf8Path, Utf8PathBuf};
use forkify_instrument::ImportName;
use serde_json::Value;

/// The keys forkify knows.
pub(crate) const KEYS: [&str; 3] = ["fork-imports", "targets", "abi"];

/// Where a table was read from, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Origin {
    /// `workspace` or `package`.
    pub table: &'static str,
    /// The manifest holding it.
    pub manifest: Utf8PathBuf,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}.metadata.forkify] in {}", self.table, self.manifest)
    }
}

/// One `[*.metadata.forkify]` table, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ForkifyTable {
    pub origin: Origin,
    pub fork_imports: Option<Vec<ImportName>>,
    pub targets: Option<Vec<String>>,
    pub abi: Option<u32>,
}

/// A key with a value of the wrong type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{key}` in {origin} must be {expected}, found {found}")]
pub(crate) struct ConfigError {
    pub key: String,
    pub origin: String,
    pub expected: &'static str,
    pub found: String,
}

/// The configuration that applies to one package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Effective {
    /// The fork imports (empty: the instrumenter's default).
    pub fork_imports: Vec<ImportName>,
    /// Target triples, and the table that named them.
    pub targets: Option<(Vec<String>, Origin)>,
    /// The pinned ABI, and the table that pinned it.
    pub abi: Option<(u32, Origin)>,
}

/// Parses the `forkify` entry of a `metadata` value (`[workspace.metadata]`
/// or `[package.metadata]` as cargo metadata reports it). `None` when the
/// table is absent. Unknown keys are pushed to `warnings`.
pub(crate) fn parse(
    metadata: &Value,
    table: &'static str,
    manifest: &Utf8Path,
    warnings: &mut Vec<String>,
) -> Result<Option<ForkifyTable>, ConfigError> {
    let origin = Origin {
        table,
        manifest: manifest.to_owned(),
    };
    let Some(forkify) = metadata.get("forkify") else {
        return Ok(None);
    };
    let wrong = |key: &str, expected: &'static str, v: &Value| ConfigError {
        key: key.to_string(),
        origin: origin.to_string(),
        expected,
        found: describe(v),
    };
    let Some(map) = forkify.as_object() else {
        return Err(wrong("forkify", "a table", forkify));
    };
    for key in map.keys() {
        if !KEYS.contains(&key.as_str()) {
            warnings.push(format!(
                "unused key `{key}` in {origin} (known keys: {})",
                KEYS.join(", ")
            ));
        }
    }
    let strings = |key: &str, expected: &'static str| -> Result<Option<Vec<String>>, ConfigError> {
        match map.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(vec![s.clone()])),
            Some(v @ Value::Array(a)) => a
                .iter()
                .map(|x| x.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .map(Some)
                .ok_or_else(|| wrong(key, expected, v)),
            Some(v) => Err(wrong(key, expected, v)),
        }
    };
    const IMPORTS: &str = "an array of \"module.name\" strings";
    let fork_imports = match strings("fork-imports", IMPORTS)? {
        None => None,
        Some(names) => Some(
            names
                .iter()
                .map(|n| n.parse::<ImportName>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| {
                    wrong(
                        "fork-imports",
                        IMPORTS,
                        map.get("fork-imports").unwrap_or(&Value::Null),
                    )
                })?,
        ),
    };
    let targets = strings("targets", "an array of target triples")?;
    if let Some(t) = &targets {
        if t.is_empty() {
            return Err(wrong(
                "targets",
                "a non-empty array of target triples",
                &Value::Array(vec![]),
            ));
        }
    }
    let abi = match map.get("abi") {
        None => None,
        Some(v) => Some(
            v.as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .filter(|n| *n > 0)
                .ok_or_else(|| wrong("abi", "a positive integer ABI version", v))?,
        ),
    };
    Ok(Some(ForkifyTable {
        origin,
        fork_imports,
        targets,
        abi,
    }))
}

/// The package table's keys override the workspace table's, key by key.
pub(crate) fn merge(workspace: Option<&ForkifyTable>, package: Option<&ForkifyTable>) -> Effective {
    let pick = |f: &dyn Fn(&ForkifyTable) -> bool| -> Option<&ForkifyTable> {
        package.filter(|p| f(p)).or(workspace.filter(|w| f(w)))
    };
    Effective {
        fork_imports: pick(&|t| t.fork_imports.is_some())
            .and_then(|t| t.fork_imports.clone())
            .unwrap_or_default(),
        targets: pick(&|t| t.targets.is_some())
            .and_then(|t| t.targets.clone().map(|v| (v, t.origin.clone()))),
        abi: pick(&|t| t.abi.is_some()).and_then(|t| t.abi.map(|v| (v, t.origin.clone()))),
    }
}

/// A JSON value as a message shows it: its type and, when short, itself.
fn describe(v: &Value) -> String {
    let kind = match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "a table",
    };
    let text = v.to_string();
    if text.len() <= 40 && !matches!(v, Value::Null) {
        format!("{kind} ({text})")
    } else {
        kind.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn table(
        v: Value,
        which: &'static str,
    ) -> (Result<Option<ForkifyTable>, ConfigError>, Vec<String>) {
        let mut warnings = Vec::new();
        let r = parse(&v, which, Utf8Path::new("/w/Cargo.toml"), &mut warnings);
        (r, warnings)
    }

    #[test]
    fn package_overrides_workspace_key_by_key() {
        let (ws, w1) = table(
            json!({"forkify": {"abi": 1, "targets": ["wasm32-unknown-unknown", "wasm64-unknown-unknown"], "fork-imports": ["env.fork"]}}),
            "workspace",
        );
        let (pkg, w2) = table(json!({"forkify": {"targets": "wasm32-wasip1"}}), "package");
        assert!(w1.is_empty() && w2.is_empty());
        let ws = ws.expect("ok").expect("present");
        let pkg = pkg.expect("ok").expect("present");
        let e = merge(Some(&ws), Some(&pkg));
        assert_eq!(e.fork_imports, vec![ImportName::new("env", "fork")]);
        let (targets, origin) = e.targets.expect("targets");
        assert_eq!(targets, ["wasm32-wasip1"]);
        assert_eq!(origin.table, "package");
        assert_eq!(e.abi.expect("abi").0, 1);
        let none = merge(None, None);
        assert!(none.fork_imports.is_empty() && none.targets.is_none() && none.abi.is_none());
    }

    #[test]
    fn unknown_keys_warn_and_wrong_types_name_the_key() {
        let (r, warnings) = table(
            json!({"forkify": {"abi": 1, "fork-import": "x.y"}}),
            "package",
        );
        assert!(r.is_ok());
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("`fork-import`"), "{warnings:?}");
        for (bad, key) in [
            (json!({"forkify": {"abi": "one"}}), "abi"),
            (json!({"forkify": {"abi": 0}}), "abi"),
            (json!({"forkify": {"targets": [1]}}), "targets"),
            (json!({"forkify": {"targets": []}}), "targets"),
            (
                json!({"forkify": {"fork-imports": ["nodot"]}}),
                "fork-imports",
            ),
            (json!({"forkify": {"fork-imports": 3}}), "fork-imports"),
            (json!({"forkify": 3}), "forkify"),
        ] {
            let e = table(bad, "workspace").0.expect_err("must fail");
            assert_eq!(e.key, key);
            let msg = e.to_string();
            assert!(
                msg.contains(&format!("`{key}`"))
                    && msg.contains("[workspace.metadata.forkify] in /w/Cargo.toml"),
                "{msg}"
            );
        }
        assert!(table(json!({}), "package").0.expect("ok").is_none());
    }
}
