//! The floor of the "whole host run" row of `cargo bench -p tomada-host --bench
//! anchors`: the demo host's arguments and its two lines (a log line on stderr, the
//! greeting on stdout), with the greeter compiled in: no plugin is loaded.

use std::path::PathBuf;

use clap::Parser;

/// Greets like `host --plugin PATH`, without loading PATH.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Path of the plugin library (not loaded)
    #[arg(long, value_name = "PATH")]
    plugin: PathBuf,
    /// Who to greet
    #[arg(long, default_value = "Mundo")]
    name: String,
}

fn main() {
    let args = Args::parse();
    eprintln!(
        "{} Plugin carregado: greeter v1.0.0 (ABI=1) — Plugin de exemplo que dá oi",
        chrono::Local::now().format("%Y/%m/%d %H:%M:%S")
    );
    println!("Olá, {} 👋", args.name);
}
