//! The contract between @name@'s host and its plugins: the trait a plugin implements
//! and the host calls, and the types that cross between them.
//!
//! Both sides depend on this crate; a plugin depends on nothing else (it reaches
//! `tomada` through the re-export below).

pub use tomada;

/// The contract's ABI (major) number: bump it for any change that breaks plugins
/// built against the old contract. Methods appended later, marked
/// `#[tomada(since = N)]`, keep old plugins loading.
pub const ABI: u32 = 1;

/// Why a plugin refused to greet: an error of the contract, a value like any other.
#[derive(tomada::Abi, Debug, Clone, PartialEq)]
pub enum GreetError {
    /// The name was empty.
    EmptyName,
}

impl std::fmt::Display for GreetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GreetError::EmptyName => f.write_str("the name is empty"),
        }
    }
}

impl std::error::Error for GreetError {}

/// A plugin that greets people.
#[tomada::contract(abi = ABI)]
pub trait Greeter {
    /// A greeting for `name`.
    ///
    /// # Errors
    /// [`GreetError::EmptyName`] if `name` is empty.
    fn greet(&self, name: &str) -> Result<String, GreetError>;

    /// A greeting made asynchronously: the host awaits it with any executor.
    async fn greet_later(&self, name: &str) -> String;
}
