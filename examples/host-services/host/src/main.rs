//! The host of the `host-services` example: `host-services-host PLUGIN [--isolate]`
//! loads a [`Notebook`] plugin (in this process, or in a child process of its own), offers it [`Host`] services (for one call, and to keep),
//! keeps a `Cursor` the plugin made after dropping the plugin itself, and prints
//! the plugin's `log` records through its own logger.

use std::error::Error;
use std::process::ExitCode;

use host_services_api::{Host, Notebook};
use tomada_host::isolate::{Isolation, Mode};

/// This program's logger: plugins' records arrive here too, with the target
/// `plugin::<name>`. (Any `log` logger works: env_logger, a tracing bridge...)
struct Stdout;

impl log::Log for Stdout {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, record: &log::Record) {
        println!("log {} {}: {}", record.level(), record.target(), record.args());
    }
    fn flush(&self) {}
}

/// A host service used for one call: a configuration.
struct Settings {
    style: Option<&'static str>,
}

impl Host for Settings {
    fn config(&self, key: &str) -> Option<String> {
        println!("host: the plugin asks for `{key}`");
        if key == "style" { self.style.map(String::from) } else { None }
    }
    fn publish(&self, _line: &str) {}
}

/// A host service the plugin keeps: a screen.
struct Screen;

impl Host for Screen {
    fn config(&self, _key: &str) -> Option<String> {
        None
    }
    fn publish(&self, line: &str) {
        println!("screen: {line}");
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        println!("host: the plugin let go of the screen");
    }
}

fn run(path: &str, mode: &Mode) -> Result<(), Box<dyn Error>> {
    log::set_logger(&Stdout)?;
    // Plugins get this level when they are loaded.
    log::set_max_level(log::LevelFilter::Debug);

    // The same calls follow in either mode: isolated, callbacks and objects travel
    // over the channel to the child process.
    let notebook = tomada_host::load_with::<dyn Notebook>(path, mode)?;

    // 1. `&dyn Host`: the plugin calls `config` back during `add`.
    notebook.add("buy milk", &Settings { style: Some("shout") })?;
    let count = notebook.add("call Ana", &Settings { style: None })?;
    println!("host: {count} notes");

    // 2. `Box<dyn Host>`: the plugin keeps the screen and uses it in later calls.
    println!("host: published {}", notebook.publish_all()?);
    notebook.attach(Box::new(Screen))?;
    println!("host: published {}", notebook.publish_all()?);

    // 3. `Box<dyn Cursor>`: an object the plugin made, which the host holds as a
    //    handle whose methods return `Result<_, CallError>` (a plugin that panics, or
    //    whose process dies, is an error here, never a panic). It keeps the plugin's
    //    library loaded (isolated: its process running), so it works after the
    //    `Plugin` handle is gone. Dropping the plugin drops its instance, and so what
    //    the instance kept (the screen), before `drop` returns, in either mode.
    let cursor = notebook.notes("")?;
    drop(notebook);
    while let Some(note) = cursor.next()? {
        println!("cursor: {note}");
    }
    drop(cursor);
    println!("host: done");
    Ok(())
}

fn main() -> ExitCode {
    // With `--isolate` this executable is also the plugin's child process.
    tomada_host::isolate::serve_if_runner();
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: host-services-host PLUGIN [--isolate] (e.g. target/debug/libhost_services_plugin.so)");
        return ExitCode::from(2);
    };
    let mode = match std::env::args().nth(2).as_deref() {
        Some("--isolate") => Mode::Isolated(Isolation::new()),
        _ => Mode::InProcess,
    };
    match run(&path, &mode) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
