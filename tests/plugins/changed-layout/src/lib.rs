//! Fixture: a greeter built against a `pluginapi` whose `Greeter` changed (`greet`
//! takes `String`, not `&str`) without bumping the ABI. The host must refuse it by
//! layout fingerprint: calling it would be undefined behaviour.

/// The changed contract, still claiming ABI 1.
#[tomada::contract(abi = 1, name = "pluginapi::Greeter")]
pub trait Greeter {
    /// Returns a greeting.
    fn greet(&self, name: String) -> String;
}

#[derive(Default)]
struct Hello;

impl Greeter for Hello {
    fn greet(&self, name: String) -> String {
        format!("Olá, {name}")
    }
}

tomada::export!(Hello as Greeter; name = "greeter");
