//! The example plugin: greets in Portuguese. Built on its own, without the host:
//! `cargo build -p greeter --release`, then copy the cdylib to `bin/greeter_v1.so`.
//! Name, version and description come from `Cargo.toml`.

use pluginapi::{Greeter, tomada};

/// The plugin instance.
#[derive(Default)]
pub struct Hello;

impl Greeter for Hello {
    fn greet(&self, name: &str) -> String {
        format!("Olá, {name} 👋")
    }
}

tomada::export!(Hello as Greeter);
