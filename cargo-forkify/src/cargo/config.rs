//! The few cargo configuration values forkify itself needs: `build.target`,
//! `build.jobs` and `term.{color,quiet,verbose}`, with cargo's precedence:
//! `--config` over `CARGO_*` environment variables over `.cargo/config.toml`
//! files (deeper directories first, `$CARGO_HOME` last). `cargo config get`
//! is unstable, so the files are read here; everything else in them is
//! cargo's business (the inner cargo reads them itself).

use std::path::{Path, PathBuf};

use toml::Value;

/// A configuration value and where it came from (for messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sourced<T> {
    pub value: T,
    /// E.g. `/w/.cargo/config.toml`, `CARGO_BUILD_TARGET`, `--config`.
    pub origin: String,
}

/// What forkify reads from cargo's configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct CargoConfig {
    /// `build.target`: one triple or several.
    pub build_target: Option<Sourced<Vec<String>>>,
    /// `build.jobs`, as cargo's `-j` would take it.
    pub build_jobs: Option<String>,
    /// `term.color`.
    pub term_color: Option<String>,
    /// `term.quiet`.
    pub term_quiet: Option<bool>,
    /// `term.verbose`.
    pub term_verbose: Option<bool>,
}

/// One layer of configuration, lowest precedence first.
struct Layer {
    table: toml::Table,
    origin: String,
}

impl CargoConfig {
    /// Loads the configuration cargo would see when run in `cwd` with these
    /// `--config` arguments. `env` looks up environment variables.
    pub fn load(
        cwd: &Path,
        cli_config: &[String],
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<CargoConfig, String> {
        let mut layers = Vec::new();
        for path in config_files(cwd, env) {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
            let table: toml::Table = text
                .parse()
                .map_err(|e| format!("cannot parse `{}`: {e}", path.display()))?;
            layers.push(Layer {
                table,
                origin: path.display().to_string(),
            });
        }
        layers.push(env_layer(env)?);
        for arg in cli_config {
            layers.push(cli_layer(arg, cwd)?);
        }
        let mut config = CargoConfig::default();
        for layer in &layers {
            config.apply(layer)?;
        }
        Ok(config)
    }

    fn apply(&mut self, layer: &Layer) -> Result<(), String> {
        let origin = &layer.origin;
        let get = |section: &str, key: &str| {
            layer
                .table
                .get(section)
                .and_then(Value::as_table)
                .and_then(|t| t.get(key))
        };
        let wrong = |key: &str, want: &str| format!("`{key}` in {origin} must be {want}");
        if let Some(v) = get("build", "target") {
            let triples = match v {
                Value::String(s) => vec![s.clone()],
                Value::Array(a) => a
                    .iter()
                    .map(|t| t.as_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| wrong("build.target", "a string or an array of strings"))?,
                _ => return Err(wrong("build.target", "a string or an array of strings")),
            };
            self.build_target = Some(Sourced {
                value: triples,
                origin: origin.clone(),
            });
        }
        if let Some(v) = get("build", "jobs") {
            self.build_jobs = Some(match v {
                Value::Integer(n) => n.to_string(),
                Value::String(s) => s.clone(),
                _ => return Err(wrong("build.jobs", "an integer or \"default\"")),
            });
        }
        if let Some(v) = get("term", "color") {
            let s = v
                .as_str()
                .ok_or_else(|| wrong("term.color", "\"auto\", \"always\" or \"never\""))?;
            self.term_color = Some(s.to_string());
        }
        if let Some(v) = get("term", "quiet") {
            self.term_quiet = Some(
                v.as_bool()
                    .ok_or_else(|| wrong("term.quiet", "a boolean"))?,
            );
        }
        if let Some(v) = get("term", "verbose") {
            self.term_verbose = Some(
                v.as_bool()
                    .ok_or_else(|| wrong("term.verbose", "a boolean"))?,
            );
        }
        Ok(())
    }
}

/// The config files cargo reads from `cwd`, lowest precedence first.
fn config_files(cwd: &Path, env: &dyn Fn(&str) -> Option<String>) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = cwd.ancestors().map(|d| d.join(".cargo")).collect();
    let home = env("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| Path::new(&h).join(".cargo")));
    if let Some(home) = home {
        if !dirs.iter().any(|d| same_dir(d, &home)) {
            dirs.push(home);
        }
    }
    let mut files = Vec::new();
    for dir in dirs {
        // Cargo prefers `config.toml` when both exist.
        let toml = dir.join("config.toml");
        let legacy = dir.join("config");
        if toml.is_file() {
            files.push(toml);
        } else if legacy.is_file() {
            files.push(legacy);
        }
    }
    files.reverse();
    files
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// The `CARGO_*` variables for the keys forkify reads.
fn env_layer(env: &dyn Fn(&str) -> Option<String>) -> Result<Layer, String> {
    let mut build = toml::Table::new();
    let mut term = toml::Table::new();
    if let Some(t) = env("CARGO_BUILD_TARGET") {
        // A list is written comma-separated in the environment.
        let triples: Vec<Value> = t
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| Value::String(s.into()))
            .collect();
        build.insert("target".into(), Value::Array(triples));
    }
    if let Some(j) = env("CARGO_BUILD_JOBS") {
        build.insert("jobs".into(), Value::String(j));
    }
    if let Some(c) = env("CARGO_TERM_COLOR") {
        term.insert("color".into(), Value::String(c));
    }
    for (var, key) in [
        ("CARGO_TERM_QUIET", "quiet"),
        ("CARGO_TERM_VERBOSE", "verbose"),
    ] {
        if let Some(v) = env(var) {
            let b = match v.as_str() {
                "true" => true,
                "false" => false,
                _ => return Err(format!("{var} must be `true` or `false`, found `{v}`")),
            };
            term.insert(key.into(), Value::Boolean(b));
        }
    }
    let mut table = toml::Table::new();
    table.insert("build".into(), Value::Table(build));
    table.insert("term".into(), Value::Table(term));
    Ok(Layer {
        table,
        origin: "the environment (CARGO_*)".into(),
    })
}

/// One `--config` argument: a TOML `KEY=VALUE` or a path to a TOML file.
fn cli_layer(arg: &str, cwd: &Path) -> Result<Layer, String> {
    let as_path = cwd.join(arg);
    if arg.ends_with(".toml") && as_path.is_file() {
        let text = std::fs::read_to_string(&as_path)
            .map_err(|e| format!("cannot read `{}`: {e}", as_path.display()))?;
        let table = text
            .parse()
            .map_err(|e| format!("cannot parse `{}`: {e}", as_path.display()))?;
        return Ok(Layer {
            table,
            origin: as_path.display().to_string(),
        });
    }
    let table = arg.parse().map_err(|e| {
        format!("`--config {arg}` is neither KEY=VALUE in TOML nor a .toml file: {e}")
    })?;
    Ok(Layer {
        table,
        origin: format!("`--config {arg}`"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "forkify-cargo-config-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("a/b/.cargo")).expect("mkdir");
        std::fs::create_dir_all(dir.join(".cargo")).expect("mkdir");
        dir
    }

    #[test]
    fn deeper_files_then_env_then_cli_win() {
        let dir = scratch("precedence");
        std::fs::write(
            dir.join(".cargo/config.toml"),
            "[build]\ntarget = \"wasm32-unknown-unknown\"\njobs = 3\n[term]\nverbose = true\n",
        )
        .expect("write");
        std::fs::write(
            dir.join("a/b/.cargo/config.toml"),
            "[build]\ntarget = [\"wasm64-unknown-unknown\", \"wasm32-wasip1\"]\n",
        )
        .expect("write");
        let none = |_: &str| None;
        let cwd = dir.join("a/b");
        let c = CargoConfig::load(&cwd, &[], &none).expect("load");
        let t = c.build_target.expect("target");
        assert_eq!(t.value, ["wasm64-unknown-unknown", "wasm32-wasip1"]);
        assert!(t.origin.ends_with("a/b/.cargo/config.toml"), "{}", t.origin);
        assert_eq!(c.build_jobs.as_deref(), Some("3"));
        assert_eq!(c.term_verbose, Some(true));

        let env =
            |k: &str| (k == "CARGO_BUILD_TARGET").then(|| "wasm32-unknown-unknown".to_string());
        let c = CargoConfig::load(&cwd, &[], &env).expect("load");
        assert_eq!(
            c.build_target.expect("target").value,
            ["wasm32-unknown-unknown"]
        );

        let c = CargoConfig::load(
            &cwd,
            &[
                "build.target=\"wasm32-wasip2\"".into(),
                "term.quiet=true".into(),
            ],
            &env,
        )
        .expect("load");
        assert_eq!(c.build_target.expect("target").value, ["wasm32-wasip2"]);
        assert_eq!(c.term_quiet, Some(true));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn wrong_types_name_the_key_and_file() {
        let dir = scratch("types");
        std::fs::write(dir.join(".cargo/config.toml"), "[build]\ntarget = 5\n").expect("write");
        let none = |_: &str| None;
        let e = CargoConfig::load(&dir, &[], &none).expect_err("must fail");
        assert!(
            e.contains("build.target") && e.contains("config.toml"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&dir);
        let dir = scratch("bad-cli");
        let e = CargoConfig::load(&dir, &["build.target=".into()], &none);
        assert!(e.expect_err("must fail").contains("--config build.target="));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
