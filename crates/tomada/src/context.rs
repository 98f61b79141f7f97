//! The host's context for a plugin instance: a configuration the host hands the
//! plugin when it makes the instance.
//!
//! The host sets it per load (`tomada_host::Loader::config` for bytes or text,
//! `Loader::config_value` for any [`Abi`] value, e.g. a struct of the contract
//! crate); the plugin's constructor — the expression after `=` in
//! [`export!`](crate::export), or the `Default` impl it calls — reads it with
//! [`context()`]:
//!
//! ```ignore
//! #[derive(tomada::Abi, Default)]
//! pub struct Settings { pub greeting: String }          // in the contract crate
//!
//! struct Hello { greeting: String }
//! impl Hello {
//!     fn new(ctx: &tomada::Context) -> Self {
//!         // An error when the host passed no configuration, or not a `Settings`.
//!         let settings: Result<Settings, tomada::wire::WireError> = ctx.value::<Settings>();
//!         Hello { greeting: settings.unwrap_or_default().greeting }
//!     }
//! }
//! tomada::export!(Hello as pluginapi::Greeter = Hello::new(&tomada::context()));
//! ```
//!
//! It is the same in-process and isolated (the bytes travel with the load request).
//! A host that sets none gives an empty context. The context is the constructor's
//! only: [`context()`] called at any other time (from a method, from another
//! thread) returns an empty one.

use std::cell::Cell;

use crate::abi::Abi;
use crate::wire::{Reader, WireError};

/// What the host handed the plugin for the instance being made. See the
/// [module documentation](self).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context {
    config: Vec<u8>,
}

impl Context {
    /// A context holding `config` (what a host's `Loader::config` passes).
    pub fn new(config: impl Into<Vec<u8>>) -> Self {
        Context { config: config.into() }
    }

    /// The configuration bytes, as the host gave them (empty if it gave none).
    pub fn bytes(&self) -> &[u8] {
        &self.config
    }

    /// Whether the host gave no configuration.
    pub fn is_empty(&self) -> bool {
        self.config.is_empty()
    }

    /// The configuration as text, if it is UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.config).ok()
    }

    /// The configuration as a value of `T`, which the host passed with
    /// `Loader::config_value` (both sides use the same type, from the contract crate).
    ///
    /// # Errors
    /// If the bytes are not one whole `T`: the host passed none, or a value of
    /// another type. (The bytes carry no type name, and evolution changes a type's
    /// fields, so another type whose byte form happens to decode as a whole `T` —
    /// a `u32` read as an enum, a one-field struct read as another — is not told
    /// apart; both sides should use the same type of the contract crate.)
    pub fn value<T: Abi>(&self) -> Result<T, WireError> {
        if self.config.is_empty() {
            return Err(WireError::Malformed("the host passed no configuration"));
        }
        let mut r = Reader::new(&self.config);
        let value = T::decode(&mut r)?;
        if !r.remaining().is_empty() {
            return Err(WireError::Malformed("the configuration is not one value of this type (bytes left over)"));
        }
        Ok(value)
    }

    /// The byte form of `value` for [`Context::value`] (what `Loader::config_value`
    /// sends).
    pub fn encode<T: Abi>(value: &T) -> Vec<u8> {
        let mut out = Vec::new();
        value.encode(&mut out);
        out
    }
}

thread_local! {
    /// The context of the instance being made on this thread, while it is made: a
    /// pointer to the one [`with`] holds. A `Cell` of a pointer has no destructor, so
    /// touching it registers none: glibc keeps a library that registered a
    /// thread-local destructor loaded until that thread exits, which would stop a
    /// plugin from ever unloading.
    static CURRENT: Cell<*const Context> = const { Cell::new(std::ptr::null()) };
}

/// The host's context for the plugin instance being made: call it from the
/// constructor (see the [module documentation](self)). Empty at any other time, and
/// when the host passed none.
pub fn context() -> Context {
    let current = CURRENT.with(Cell::get);
    // SAFETY: non-null only while `with` runs on this thread, which owns the
    // `Context` it points to for that whole time and does not change it.
    unsafe { current.as_ref() }.cloned().unwrap_or_default()
}

/// Runs `make` with `context` as the current context (then the one before again,
/// even if it panics).
pub(crate) fn with<R>(context: Context, make: impl FnOnce() -> R) -> R {
    struct Reset(*const Context);
    impl Drop for Reset {
        fn drop(&mut self) {
            CURRENT.with(|c| c.set(self.0));
        }
    }
    let previous = CURRENT.with(|c| c.replace(&context));
    let _reset = Reset(previous);
    make()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_context_is_the_constructors_only() {
        assert!(context().is_empty());
        let seen = with(Context::new("lang=pt"), || (context().as_str().map(str::to_owned), context().bytes().len()));
        assert_eq!(seen, (Some("lang=pt".to_owned()), 7));
        assert!(context().is_empty(), "gone after the constructor");
        let caught = std::panic::catch_unwind(|| with(Context::new("x"), || panic!("constructor failed")));
        assert!(caught.is_err());
        assert!(context().is_empty(), "gone after a panicking constructor");
        // Nested (a constructor that loads a plugin of its own) restores the outer one.
        with(Context::new("outer"), || {
            with(Context::new("inner"), || assert_eq!(context().as_str(), Some("inner")));
            assert_eq!(context().as_str(), Some("outer"));
        });
    }

    #[test]
    fn values_round_trip_and_wrong_bytes_are_errors() {
        let bytes = Context::encode(&(String::from("pt"), 3u32));
        let ctx = Context::new(bytes);
        assert_eq!(ctx.value::<(String, u32)>().unwrap(), ("pt".to_owned(), 3));
        assert!(ctx.value::<u8>().is_err(), "bytes left over");
        assert!(ctx.value::<(String, u64)>().is_err(), "ends early");
        assert!(Context::default().value::<u8>().is_err(), "none passed");
    }
}
