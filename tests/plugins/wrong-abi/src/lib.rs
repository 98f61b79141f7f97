//! Fixture: a greeter built against a newer `pluginapi` whose `Greeter` contract
//! says ABI 2 (same name, same methods). The host must refuse it by ABI number —
//! before loading it: its `.init_array` entry creates the file named by
//! `TOMADA_MARKER` the moment any dynamic loader opens it.

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

/// Runs when the library is opened, before anyone can look a symbol up.
extern "C" fn leave_a_trace() {
    if let Some(path) = std::env::var_os("TOMADA_MARKER") {
        let _ = std::fs::write(path, b"wrong-abi initialiser ran\n");
    }
}

#[used]
#[unsafe(link_section = ".init_array")]
static LEAVE_A_TRACE: extern "C" fn() = leave_a_trace;
