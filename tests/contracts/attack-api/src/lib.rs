//! A contract whose plugin (`tests/plugins/sandbox-attacker`) tries, on request, one
//! attack on its host or the machine and says what happened. One method keeps the
//! list of attacks open-ended (see the plugin for the names).

/// Attacks on request.
#[tomada::contract(abi = 1)]
pub trait Attacker {
    /// Tries attack `name` with `arg`: `Ok(what it got)` if the attack went through,
    /// `Err(the error that stopped it)` otherwise.
    fn attack(&self, name: &str, arg: &str) -> Result<String, String>;
    /// Tries attack `name` on `probe`, an object the host lends for this call only.
    fn lend(&self, name: &str, probe: &dyn Probe) -> Result<String, String>;
}

/// An object of the host's, lent to the plugin for one call (`Attacker::lend`).
#[tomada::contract(abi = 1)]
pub trait Probe {
    /// The number the host gave it (how a plugin that scans object numbers knows it).
    fn mark(&self) -> u64;
    /// Uses the object: the host records whether it was still alive.
    fn touch(&self) -> u64;
}
