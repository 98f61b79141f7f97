//! Project tasks, run as `cargo xtask <task>` (see `.cargo/config.toml`).
//!
//! - `demo`: builds the greeter plugin on its own (`cargo build -p greeter
//!   --release`), copies it to `bin/greeter_v1.so` (`.dylib`/`.dll` elsewhere), and
//!   runs the host on it, as the Go original's `go build -buildmode=plugin` + `host`.
//! - `bench`: runs the benchmarks behind each figure of issue 20 and prints each
//!   beside its floor, the ratio and the goal (see [`mod@bench`] and `docs/benchmarks.md`).

mod bench;

use std::env::consts::{DLL_PREFIX, DLL_SUFFIX};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

pub(crate) fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask sits in the workspace").to_path_buf()
}

pub(crate) fn status(cmd: &mut Command) -> Result<(), String> {
    let status = cmd.status().map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("{cmd:?} failed with {status}")) }
}

/// Says what the demo is doing, on an interactive terminal only: piped, the demo's
/// output is exactly the Go original's two lines.
pub(crate) fn say(what: &str) {
    use std::io::IsTerminal;
    if std::io::stderr().is_terminal() {
        eprintln!("\x1b[2mxtask: {what}\x1b[0m");
    }
}

fn demo() -> Result<(), String> {
    let root = root();
    say("building the greeter plugin on its own: cargo build --release -p greeter");
    status(cargo().current_dir(&root).args(["build", "--quiet", "--release", "-p", "greeter"]))?;
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    let built = target.join("release").join(format!("{DLL_PREFIX}greeter{DLL_SUFFIX}"));
    let plugin = root.join("bin").join(format!("greeter_v1{DLL_SUFFIX}"));
    std::fs::create_dir_all(root.join("bin")).map_err(|e| format!("cannot create bin/: {e}"))?;
    std::fs::copy(&built, &plugin)
        .map_err(|e| format!("cannot copy {} to {}: {e}", built.display(), plugin.display()))?;
    say(&format!(
        "copied it to bin/{}; building and running the host: cargo run --release -p host -- --plugin bin/{0}",
        plugin.file_name().expect("a file name").to_string_lossy()
    ));
    status(
        cargo()
            .current_dir(&root)
            .args(["run", "--quiet", "--release", "-p", "host", "--", "--plugin"])
            .arg(Path::new("bin").join(plugin.file_name().expect("a file name"))),
    )
}

fn main() -> ExitCode {
    let task = std::env::args().nth(1);
    let result = match task.as_deref() {
        Some("demo") => demo(),
        Some("bench") => bench::bench(&std::env::args().skip(2).collect::<Vec<_>>()),
        other => Err(format!("unknown task {other:?}; tasks: demo, bench")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}
