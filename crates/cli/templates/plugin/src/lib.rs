//! A plugin for @name@: implements `@crate@_contract::Greeter`. Built as a `cdylib`
//! (`cargo build` writes it to `target/debug/`: `lib@crate@_plugin.so` on Linux),
//! loaded by the host at run time.

use @crate@_contract::{GreetError, Greeter, tomada};

/// The plugin's instance: made (with `Default`) when a host loads the plugin, dropped
/// when the host drops its handle.
#[derive(Default)]
pub struct Hello;

// `#[tomada::implement]` lets the impl write the contract's `async fn` as `async fn`.
#[tomada::implement]
impl Greeter for Hello {
    fn greet(&self, name: &str) -> Result<String, GreetError> {
        match name {
            "" => Err(GreetError::EmptyName),
            // A bug on purpose, to show the host that a panic here is an error value
            // there: remove it in a real plugin.
            "panic" => panic!("cannot greet {name:?}"),
            _ => Ok(format!("Olá, {name}!")),
        }
    }

    async fn greet_later(&self, name: &str) -> String {
        format!("Olá mais tarde, {name}!")
    }
}

// Name, version and description come from Cargo.toml.
tomada::export!(Hello as Greeter);
