//! Fixture: a greeter built against a newer `pluginapi` whose `Greeter` contract
//! says ABI 2 (same name, same methods). The host must refuse it by ABI number.

/// The contract as a hypothetical pluginapi 2.0 declares it.
#[tomada::contract(abi = 2, name = "pluginapi::Greeter")]
pub trait Greeter {
    /// Returns a greeting.
    fn greet(&self, name: &str) -> String;
}

#[derive(Default)]
struct Hello;

impl Greeter for Hello {
    fn greet(&self, name: &str) -> String {
        format!("Olá (ABI 2), {name}")
    }
}

tomada::export!(Hello as Greeter; name = "greeter", version = "2.0.0");
