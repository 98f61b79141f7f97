//! `host --plugin PATH [--name NAME]`: loads a greeter plugin, checks that it speaks
//! the `pluginapi::Greeter` contract, and prints its greeting.
//!
//! Like the Go original's, the first line is a log line on stderr with a local
//! `YYYY/MM/DD HH:MM:SS` prefix; the greeting goes to stdout. Any failure is one
//! line on stderr and exit status 1.

use std::error::Error;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use pluginapi::Greeter;

tomada_host::tomada::global_allocator!();
// Records in this executable the contract it expects, for `tomada diff`.
tomada_host::tomada::expects!(pluginapi::Greeter);

/// Loads a greeter plugin and greets.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Path of the plugin library, e.g. bin/greeter_v1.so
    #[arg(long, value_name = "PATH")]
    plugin: PathBuf,
    /// Who to greet
    #[arg(long, default_value = "Mundo")]
    name: String,
}

/// Go's `log` package format: `2025/08/15 10:31:07 message`, on stderr.
fn log(message: &str) {
    eprintln!("{} {message}", chrono::Local::now().format("%Y/%m/%d %H:%M:%S"));
}

/// The error and its causes on one line: `error: a: b: c`.
fn one_line(err: &dyn Error) -> String {
    let mut line = format!("error: {err}");
    let mut source = err.source();
    while let Some(cause) = source {
        line.push_str(": ");
        line.push_str(&cause.to_string());
        source = cause.source();
    }
    line.replace('\n', " ")
}

fn run(args: &Args) -> Result<(), Box<dyn Error>> {
    let plugin = tomada_host::load::<dyn Greeter>(&args.plugin)?;
    let info = plugin.info();
    log(&format!(
        "Plugin carregado: {} v{} (ABI={}) — {}",
        info.name,
        info.version,
        plugin.manifest().contract.abi,
        info.description
    ));
    let greeting = plugin.greet(&args.name).map_err(|e| format!("plugin `{}` failed to greet: {e}", info.name))?;
    println!("{greeting}");
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            log(&one_line(err.as_ref()));
            ExitCode::FAILURE
        }
    }
}
