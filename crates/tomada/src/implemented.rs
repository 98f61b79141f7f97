//! The check that makes a forgotten `#[tomada::implement]` an error that says so.
//!
//! Without the attribute, an `async fn` in a plugin's impl does not match the trait
//! `#[contract]` emits (which holds `fn f<'tomada>(..) -> BoxFuture<'tomada, R>`), and
//! rustc's E0053 ("expected `Pin<Box<...>>`, found future") cannot carry a hint. So
//! `export!` also requires, of a type it exports for a contract with `async fn`s,
//! [`Implemented`], whose unmet-bound message names the fix; `#[implement]` is what
//! provides it.
//!
//! `#[implement]` cannot name this trait: its plugin may depend on the contract crate
//! alone, where `::tomada` does not resolve (proc macros have no `$crate`). So it
//! emits something nameable from `core` alone — `impl From<T> for Box<dyn C>`, a real
//! conversion, legal under the orphan rules in the plugin's crate and in the
//! contract's — and [`Implemented`] holds for every `T` that has it. (No crate offers
//! a path-free marker; this is hand-written.)

/// Holds for a type whose impl of contract `C` was written under
/// `#[tomada::implement]`. Required by `export!` for contracts with `async fn`s.
#[diagnostic::on_unimplemented(
    message = "`{Self}` implements a contract with `async fn`s without `#[tomada::implement]`",
    label = "exported here",
    note = "add `#[tomada::implement]` above the contract's `impl ... for {Self}`: every impl of a contract with `async fn`s is written under it (it turns each `async fn` into the boxed future the trait declares, and leaves the rest alone); a plugin that depends on its contract crate only reaches it through `use contract_crate::tomada;`"
)]
pub trait Implemented<C: ?Sized> {}

#[diagnostic::do_not_recommend]
impl<T, C: ?Sized> Implemented<C> for T where Box<C>: From<T> {}
