//! `tomada new DIR [--path CHECKOUT]`: a new workspace of a contract crate, a plugin
//! built against it and a host that loads it, outside any repository, that builds,
//! runs in both modes (in-process and isolated) and passes its own `cargo test`.
//!
//! The files are templates (`crates/cli/templates/`, compiled into the command) with
//! `@key@` placeholders. Tomada is a crates.io dependency of this command's version,
//! or, with `--path`, a path dependency on a checkout (whose `Cargo.lock` the new
//! workspace starts from, so it builds with the versions tomada is tested with).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// Each file of the new workspace: its path in it, and its template.
const FILES: &[(&str, &str)] = &[
    ("Cargo.toml", include_str!("../templates/Cargo.toml")),
    (".gitignore", include_str!("../templates/gitignore")),
    ("README.md", include_str!("../templates/README.md")),
    ("contract/Cargo.toml", include_str!("../templates/contract/Cargo.toml")),
    ("contract/src/lib.rs", include_str!("../templates/contract/src/lib.rs")),
    ("plugin/Cargo.toml", include_str!("../templates/plugin/Cargo.toml")),
    ("plugin/src/lib.rs", include_str!("../templates/plugin/src/lib.rs")),
    ("host/Cargo.toml", include_str!("../templates/host/Cargo.toml")),
    ("host/src/main.rs", include_str!("../templates/host/src/main.rs")),
    ("host/tests/run.rs", include_str!("../templates/host/tests/run.rs")),
];

/// Where the new workspace's `tomada` and `tomada-host` come from.
pub enum Source {
    /// crates.io, at this version (this command's own).
    Version(&'static str),
    /// A tomada checkout (its root: `crates/tomada`, `crates/host` inside).
    Checkout(PathBuf),
}

/// The name of the project in `dir`: its last component, which names the crates
/// (`NAME-contract`, `NAME-plugin`, `NAME-host`).
fn project_name(dir: &Path) -> Result<String> {
    // Absolute, so that `.` (an empty directory to fill) is named too.
    let absolute = std::path::absolute(dir).with_context(|| format!("cannot resolve `{}`", dir.display()))?;
    let name = absolute
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("`{}` does not end in a name for the project", dir.display()))?;
    if name == "tomada" {
        bail!(
            "a project named `tomada` would make a package `tomada-host`, which is tomada's own; choose another name"
        );
    }
    let valid = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !valid {
        bail!(
            "`{name}` cannot name the project's crates: use lowercase ASCII letters, digits, `-` and `_`, starting with a letter (e.g. `tomada new my-app`)"
        );
    }
    Ok(name.to_owned())
}

/// `text` as a TOML basic string. (Written by hand: one string does not need a TOML
/// writer.)
fn toml_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The `[workspace.dependencies]` lines for tomada, and how the README says where it
/// comes from.
fn dependencies(source: &Source) -> Result<(String, String)> {
    match source {
        Source::Version(version) => Ok((
            format!("tomada = \"{version}\"\ntomada-host = \"{version}\""),
            format!("from crates.io, version {version} (`tomada new --path CHECKOUT` uses a local checkout instead)"),
        )),
        Source::Checkout(root) => {
            let crate_dir = |name: &str, dir: &str| -> Result<String> {
                let manifest = root.join(dir).join("Cargo.toml");
                let text = std::fs::read_to_string(&manifest).with_context(|| {
                    format!("`{}` is not a tomada checkout: cannot read {}", root.display(), manifest.display())
                })?;
                if !text.lines().any(|l| l.trim() == format!("name = \"{name}\"")) {
                    bail!(
                        "`{}` is not a tomada checkout: {} is not the `{name}` crate",
                        root.display(),
                        manifest.display()
                    );
                }
                let dir = root.join(dir);
                let dir = dir.to_str().with_context(|| {
                    format!("`{}` is not valid UTF-8, so it cannot be written in Cargo.toml", dir.display())
                })?;
                Ok(toml_string(dir))
            };
            let (tomada, host) = (crate_dir("tomada", "crates/tomada")?, crate_dir("tomada-host", "crates/host")?);
            Ok((
                format!("tomada = {{ path = {tomada} }}\ntomada-host = {{ path = {host} }}"),
                format!(
                    "from the checkout at `{}` (path dependencies; `Cargo.lock` started as the checkout's)",
                    root.display()
                ),
            ))
        }
    }
}

/// Makes the workspace in `dir` (which must not exist, or be empty), and returns
/// what to say: what was made and what to run next.
pub fn new(dir: &Path, source: Source) -> Result<String> {
    let name = project_name(dir)?;
    let source = match source {
        Source::Checkout(root) => Source::Checkout(
            std::fs::canonicalize(&root)
                .with_context(|| format!("cannot find the tomada checkout `{}`", root.display()))?,
        ),
        other => other,
    };
    let (dependencies, from) = dependencies(&source)?;
    if dir.exists() && std::fs::read_dir(dir).map(|mut d| d.next().is_some()).unwrap_or(true) {
        bail!("`{}` already exists and is not empty; choose a new directory", dir.display());
    }
    let values = [
        ("@name@", name.clone()),
        ("@crate@", name.replace('-', "_")),
        ("@rust_version@", env!("CARGO_PKG_RUST_VERSION").to_owned()),
        ("@tomada_dependencies@", dependencies),
        ("@tomada_source@", from),
        ("@tomada_link@", env!("CARGO_PKG_REPOSITORY").to_owned()),
    ];
    for (path, template) in FILES {
        let text = values.iter().fold(template.to_string(), |text, (key, value)| text.replace(key, value));
        let path = dir.join(path);
        let parent = path.parent().expect("every file is in the directory");
        std::fs::create_dir_all(parent).with_context(|| format!("cannot create `{}`", parent.display()))?;
        std::fs::write(&path, text).with_context(|| format!("cannot write `{}`", path.display()))?;
    }
    if let Source::Checkout(root) = &source {
        let lock = root.join("Cargo.lock");
        if lock.is_file() {
            std::fs::copy(&lock, dir.join("Cargo.lock"))
                .with_context(|| format!("cannot copy `{}`", lock.display()))?;
        }
    }
    let from = match &source {
        Source::Version(v) => format!("tomada {v} from crates.io"),
        Source::Checkout(root) => format!("tomada from {}", root.display()),
    };
    let cd = (dir != Path::new(".")).then(|| format!("  cd {}", dir.display()));
    Ok([
        Some(format!("made `{}`: {name}-contract, {name}-plugin, {name}-host ({from})", dir.display())),
        Some("next:".to_owned()),
        cd,
        Some("  cargo build".to_owned()),
        Some(format!("  cargo run -p {name}-host               # the plugin in the host's process")),
        Some(format!("  cargo run -p {name}-host -- --isolate  # the plugin in a child process")),
        Some("  cargo test".to_owned()),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No `@key@` is left in any file: each template uses only the keys `new` fills.
    #[test]
    fn every_placeholder_is_filled() {
        let dir = tempfile::tempdir().unwrap();
        let made = dir.path().join("demo-app");
        new(&made, Source::Version("9.9.9")).unwrap();
        for (path, _) in FILES {
            let text = std::fs::read_to_string(made.join(path)).unwrap();
            let left: Vec<&str> = text
                .split('@')
                .skip(1)
                .step_by(2)
                .filter(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
                .collect();
            assert!(left.is_empty(), "{path}: {left:?}");
            assert!(!text.contains("@name@") && !text.contains("@crate@"), "{path}");
        }
        let root = std::fs::read_to_string(made.join("Cargo.toml")).unwrap();
        assert!(root.contains("tomada = \"9.9.9\"\ntomada-host = \"9.9.9\"\n"), "{root}");
        let host = std::fs::read_to_string(made.join("host/src/main.rs")).unwrap();
        assert!(host.contains("use demo_app_contract::{Greeter, tomada};"), "{host}");
        // Never over a directory that holds anything.
        assert!(new(&made, Source::Version("9.9.9")).unwrap_err().to_string().contains("not empty"));
    }

    #[test]
    fn names_and_strings() {
        assert_eq!(project_name(Path::new("/tmp/my-app")).unwrap(), "my-app");
        let here = std::env::current_dir().unwrap();
        let here_name = here.file_name().unwrap().to_str().unwrap();
        assert_eq!(project_name(Path::new(".")).ok().as_deref(), project_name(Path::new(here_name)).ok().as_deref());
        for bad in ["My-App", "1app", "app.rs", "-app", "ap p", "tomada", "/"] {
            assert!(project_name(Path::new(bad)).is_err(), "{bad}");
        }
        assert_eq!(toml_string(r#"C:\a "b""#), r#""C:\\a \"b\"""#);
        assert_eq!(toml_string("a\nb"), r#""a\u000Ab""#);
    }
}
