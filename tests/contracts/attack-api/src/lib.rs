//! A contract whose plugin (`tests/plugins/sandbox-attacker`) tries, on request, one
//! attack on its host or the machine and says what happened. One method keeps the
//! list of attacks open-ended (see the plugin for the names).

/// Attacks on request.
#[tomada::contract(abi = 1)]
pub trait Attacker {
    /// Tries attack `name` with `arg`: `Ok(what it got)` if the attack went through,
    /// `Err(the error that stopped it)` otherwise.
    fn attack(&self, name: &str, arg: &str) -> Result<String, String>;
}
