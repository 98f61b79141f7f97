//! # tomada — native Rust plugins over a stable, checked C ABI
//!
//! `tomada` is what *contract* crates and *plugin* crates depend on (hosts depend on
//! `tomada-host`). What they name:
//!
//! - [`#[contract]`](contract) turns a trait into a plugin contract; [`Contract`] is
//!   what it implements for `dyn Trait` (hosts bound on it: `Plugin<dyn Greeter>`).
//! - [`#[derive(Abi)]`](derive@Abi) lets a struct or enum cross the boundary; [`Abi`]
//!   and [`Arg`] are the traits results and arguments implement.
//! - [`export!`] exports a plugin from a `cdylib`; [`expects!`] records, in a host,
//!   the contracts it expects; [`#[implement]`](implement) writes a contract's
//!   `async fn`s; [`global_allocator!`] is the allocator plugins get from `export!`.
//! - [`CallError`] is what every call from a host can fail with.
//! - [`context()`] and [`Context`]: the configuration a host handed a plugin.
//! - [`Handle`] / [`handle`]: a plugin-made object as the host holds it;
//!   [`BoxFuture`] and [`CallFuture`]: `async fn`s across the boundary.
//! - [`Manifest`], [`Info`] and [`Interface`]: what a plugin file says about itself,
//!   read by hosts and tools without running it.
//! - [`wire::set_limits`] / [`wire::Limits`]: the decoding limits for isolated plugins.
//!
//! A contract is a plain Rust trait; a plugin implements it and exports it with one
//! line:
//!
//! ```
//! /// Says hello.
//! #[tomada::contract(abi = 1)]
//! pub trait Greeter {
//!     /// Greets `name`.
//!     fn greet(&self, name: &str) -> String;
//! }
//!
//! // In the plugin crate (`crate-type = ["cdylib"]`):
//! #[derive(Default)]
//! struct Hello;
//! impl Greeter for Hello {
//!     fn greet(&self, name: &str) -> String { format!("Olá, {name} 👋") }
//! }
//! tomada::export!(Hello as Greeter; name = "hello", version = "1.0.0");
//!
//! fn main() {
//!     use tomada::Contract;
//!     // What a host checks before it calls: the contract's name, ABI and layout.
//!     assert_eq!(<dyn Greeter as Contract>::ABI, 1);
//!     assert!(<dyn Greeter as Contract>::NAME.ends_with("Greeter"));
//!     // The trait stays as written, so the plugin is tested as plain Rust.
//!     let plugin: Box<dyn Greeter> = Box::new(Hello);
//!     assert_eq!(plugin.greet("Mundo"), "Olá, Mundo 👋");
//! }
//! ```
//!
//! A host loads the built library with `tomada_host::load::<dyn Greeter>(path)?` and
//! calls `plugin.greet("Mundo")?`, in its own process or in a sandboxed child process.
//!
//! [`#[contract]`](contract) keeps the trait as written (adding `Send + Sync + 'static`)
//! and generates, for the boundary, a `#[repr(C)]` vtable of `extern "C"` shims that
//! convert every argument and result to an FFI-safe form ([`Abi`]) and catch panics,
//! a layout fingerprint of the whole contract, and the host-side client
//! (`GreeterClient`, reached through `tomada_host::Plugin<dyn Greeter>`), whose
//! methods return `Result<T, CallError>`.
//!
//! No contract, plugin or host author writes `unsafe` or `extern "C"`.
//!
//! ## Examples
//! The repository's `examples/` directory holds contract / plugin / host trios to
//! copy, each built and run by `cargo test`: `examples/rich-types` (structs, enums with
//! data, collections), `examples/host-services` (host services called back and kept,
//! plugin-made objects, `log` records), `examples/sandboxed` (an isolated, sandboxed
//! plugin whose faults are errors) and `examples/plugin-dir` (every plugin in a
//! directory).
//!
//! ## What crosses the boundary
//! Plain Rust types, nested to any depth: integers of every width, `f32`, `f64`,
//! `bool`, `char`, `()`, `String`, `Vec<T>`, `VecDeque<T>`, `HashMap<K, V>`,
//! `BTreeMap<K, V>`, `HashSet<T>`, `BTreeSet<T>`, `Option<T>`, `Result<T, E>`,
//! `Box<T>`, tuples (up to 12), arrays `[T; N]`, and structs and enums with
//! `#[derive(tomada::Abi)]` (see [`Abi`]); arguments may also borrow, as `&str` and
//! `&[T]` (see [`Arg`]). Anything else is one compile error naming the type and what
//! to use instead.
//!
//! ```
//! use std::collections::HashMap;
//!
//! #[derive(tomada::Abi, Debug, Clone, PartialEq)]
//! pub enum StoreError { Full, ReadOnly, Other(String) }
//!
//! #[derive(tomada::Abi, Debug, Clone, PartialEq)]
//! pub struct Entry { pub key: String, pub value: Vec<u8>, pub tags: Vec<String> }
//!
//! /// A key-value store.
//! #[tomada::contract(abi = 1)]
//! pub trait Store {
//!     fn put(&self, entry: Entry) -> Result<(), StoreError>;
//!     fn get(&self, key: &str) -> Option<Box<Entry>>;
//!     fn keys(&self) -> Vec<String>;
//!     fn dump(&self) -> HashMap<String, Vec<u8>>;
//!     fn put_many(&self, pairs: &[(String, Vec<u8>)]) -> [u8; 4];
//! }
//! ```
//!
//! ## Threads
//! Contract traits are `Send + Sync + 'static`: a host may call one plugin instance
//! from many threads at once, so a plugin guards its mutable state (atomics, `Mutex`)
//! as any `Sync` type does.
//!
//! ## Panics
//! Every shim runs the method under `catch_unwind`; a panic reaches the host as
//! [`CallError::Panicked`] with its message and location, never as an unwind (each
//! cdylib has its own std, so the host could not catch it anyway). Plugins must be
//! built with `panic = "unwind"` (the default); hosts refuse `panic = "abort"` builds.
//!
//! ## Modules
//! [`abi`] (the boundary traits), [`wire`] (the byte forms of isolated calls and
//! their limits), [`interface`] (contract descriptions and what stays compatible),
//! [`context`](mod@context) (what a host hands a plugin's constructor), [`future`]
//! (`async fn`s), [`object`] (plugin-made objects) and [`alloc`] (who owns boundary
//! buffers).
//!
//! Everything else public (the `#[repr(C)]` forms, the exported descriptor, the
//! clients' channels) is what generated code and `tomada-host` use, under a hidden
//! `__private` module: it is not part of the API and changes without notice.

#![deny(unsafe_op_in_unsafe_fn)]

// The generated code names `::tomada`; this makes that path work inside tomada too.
extern crate self as tomada;

pub mod abi;
pub mod alloc;
pub mod context;
pub mod future;
pub mod interface;
pub mod object;
pub mod wire;

// The plumbing: what generated code and `tomada-host` use, reached through
// [`__private`]. These paths stay (hidden) while other branches still name them;
// new code names `tomada::__private::<module>`.
#[doc(hidden)]
pub mod block;
#[doc(hidden)]
pub mod call;
#[doc(hidden)]
pub mod client;
#[doc(hidden)]
pub mod descriptor;
#[doc(hidden)]
pub mod fallback;
#[doc(hidden)]
pub mod ffi;
#[doc(hidden)]
pub mod fingerprint;
mod implemented;
#[doc(hidden)]
pub mod logging;
#[doc(hidden)]
pub mod remote;

pub use abi::{Abi, Arg};
pub use alloc::SystemAlloc;
pub use call::CallError;
pub use context::{Context, context};
#[doc(hidden)]
pub use descriptor::{BOUNDARY_VERSION, Descriptor};
pub use descriptor::{Info, Manifest, ManifestError};
pub use future::{BoxFuture, CallFuture};
pub use interface::Interface;
pub use object::{Handle, handle};
/// Derives [`Abi`] for a struct or an enum whose fields are all [`Abi`] types, so it
/// can cross the boundary. See [`Abi`] for an example.
///
/// Structs of every form (named, tuple, unit) and enums with unit, tuple and struct
/// variants are supported; generic or borrowing types are not (they must own their
/// data), nor enums without variants.
pub use tomada_macros::Abi;
/// Turns a trait into a plugin contract. See the [crate documentation](crate).
///
/// Arguments: `abi = <u32 expression>` (required: the contract's major version; bump
/// it for any change that breaks plugins) and `name = "<string>"` (optional; defaults
/// to the trait's path, e.g. `pluginapi::Greeter`).
///
/// Every method takes `&self` and has no generics; it may be `async fn` (see
/// [`implement`] and [`future`]); arguments implement [`Arg`] and results [`Abi`]. A
/// contract with a type that cannot cross fails with one error naming it.
///
/// Methods added later go at the end of the trait with `#[tomada(since = N)]`, `N`
/// being the contract's new minor version. A (plain) method may have a default body:
/// besides being the plugins' default, it is what the host runs, with `self` standing
/// for the plugin, when the plugin predates the method; without one, such calls return
/// [`CallError::NotProvided`]. Struct fields and enum variants evolve too; see
/// `docs/evolution.md` and [`interface`] for what stays compatible.
pub use tomada_macros::contract;
/// Lets a plugin write a contract's `async fn`s as `async fn` in its impl.
///
/// In the trait `#[contract]` emits, `async fn fetch(&self, key: &str) -> R` is
/// `fn fetch<'tomada>(&'tomada self, key: &'tomada str) -> BoxFuture<'tomada, R>`.
/// Under `#[tomada::implement]`, each `async fn` of the impl block is rewritten so (its
/// body becomes `Box::pin(async move { .. })`, as with the `async-trait` crate); other
/// methods are left as they are. The same method may be written by hand instead:
/// `fn fetch<'a>(&'a self, key: &'a str) -> tomada::BoxFuture<'a, R> { Box::pin(async move { .. }) }`
/// (or with `&self, key: &str` and `BoxFuture<'_, R>` when the future does not keep
/// `key`), still under the attribute. See [`future`] for how the future crosses.
///
/// The impl of a contract with `async fn`s is always written under this attribute:
/// [`export!`] checks it, so a forgotten one is an error that says to add it (rustc's
/// own "expected `Pin<Box<...>>`, found future" cannot). It also makes `Box<dyn C>`
/// `From` the type, which is how `export!` tells.
///
/// The expansion names nothing of `tomada`, so a plugin that depends on its contract
/// crate only (which does `pub use tomada;`) writes `use contract_crate::tomada;` and
/// then `#[tomada::implement]`, or `#[contract_crate::tomada::implement]`.
///
/// ```
/// #[tomada::contract(abi = 1)]
/// pub trait Cache {
///     async fn fetch(&self, key: &str) -> Option<String>;
/// }
///
/// struct Memory;
///
/// #[tomada::implement]
/// impl Cache for Memory {
///     async fn fetch(&self, key: &str) -> Option<String> {
///         Some(key.to_uppercase())
///     }
/// }
/// # let _: &dyn Cache = &Memory;
/// ```
pub use tomada_macros::implement;

/// What the code generated by `#[contract]`, `#[derive(Abi)]` and `export!` uses.
/// Not part of the API: it changes without notice.
#[doc(hidden)]
pub mod __private {
    pub use std::mem::MaybeUninit;
    pub use std::sync::Arc;

    pub use crate::{RUSTC_VERSION, TARGET};
    pub use crate::{block, call, client, descriptor, fallback, ffi, fingerprint, logging, remote};

    pub use std::sync::atomic::AtomicU8;

    pub use crate::abi::{SliceStore, native};
    pub use crate::block::{VARIANT_BLOCK, begin_block, block, end_block, end_block_read, skip_block};
    pub use crate::call::{__finish as finish, __shim as shim};
    pub use crate::client::{
        Channel, DispatchFn, RawClient, Target, answer_form, remote_call, remote_call_async, serve, serve_as,
        unknown_method,
    };
    pub use crate::fallback::{fallback, fallback_async, fallback_failed};
    pub use crate::ffi::{RObject, ROption, RResult, RSlice, RVec, Status};
    pub use crate::future::{
        __async_shim as async_shim, AssertSend, CANCEL_METHOD, CallFuture, FfiFuture, block_on, cancel_dispatch,
        serve_async,
    };
    pub use crate::implemented::Implemented;
    pub use crate::interface::{ContractDesc, FieldDesc, MethodDesc, Style, TypeDesc, TypeRef, VariantDesc};
    pub use crate::logging::{__enter as enter, __several as several};
    pub use crate::object::{Leaked, release_boxed};
    pub use crate::remote::{Exported, decode_remote, encode_borrowed, encode_exported};
    pub use crate::wire::{Reader, WireError, bad_variant, put_variant};

    /// The value a field added with `#[tomada(since = N)]` and no `default = expr`
    /// takes where the other side is older: its `Default`. A trait of its own only
    /// for the error a type without `Default` gets, which names the fix.
    #[diagnostic::on_unimplemented(
        message = "`{Self}` has no `Default`, the value a field added with `#[tomada(since = N)]` takes when the other side is older",
        label = "this `since` field needs a value for older peers",
        note = "give it one with `#[tomada(since = N, default = expr)]`, or implement `Default` for `{Self}`"
    )]
    pub trait SinceDefault: Sized {
        /// The field's value when the other side's struct ends before it.
        fn since_default() -> Self;
    }

    impl<T: Default> SinceDefault for T {
        #[inline]
        fn since_default() -> Self {
            T::default()
        }
    }
}

/// The `rustc --version` of the compiler that built this copy of tomada (and so the
/// plugin or host that links it).
#[doc(hidden)]
pub const RUSTC_VERSION: &str = env!("TOMADA_RUSTC_VERSION");
/// The target triple this copy of tomada was built for.
#[doc(hidden)]
pub const TARGET: &str = env!("TOMADA_TARGET");

/// Links a contract trait object type (`dyn Greeter`) to its generated parts.
/// Implemented by [`#[contract]`](contract); never by hand.
///
/// # Safety
/// `VTable` must be the `#[repr(C)]` vtable generated for the trait, `FINGERPRINT` its
/// layout fingerprint, and `__client` must only build a client that calls through it.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not the trait object of a tomada contract",
    label = "not a `#[tomada::contract]` trait",
    note = "a trait object crosses a tomada plugin boundary as `Box<dyn C>`, `Arc<dyn C>` or (as an argument) `&dyn C` of a `#[tomada::contract]` trait `C`"
)]
pub unsafe trait Contract: 'static {
    /// The contract's name, e.g. `pluginapi::Greeter`.
    const NAME: &'static str;
    /// The contract's ABI (major) number.
    const ABI: u32;
    /// The layout fingerprint: a hash of every type's layout in the contract, so a
    /// plugin built against a changed contract is refused before it is called.
    const FINGERPRINT: u64;
    /// The contract's minor version: the largest `#[tomada(since = N)]` of its methods
    /// and of the struct fields and enum variants they use.
    const MINOR: u32;
    /// The whole contract, readable (see [`interface`]).
    #[doc(hidden)]
    const DESCRIPTION: interface::ContractDesc;
    /// The generated `#[repr(C)]` vtable.
    #[doc(hidden)]
    type VTable: 'static;
    /// The generated host-side client, whose methods mirror the trait's and return
    /// `Result<_, CallError>`.
    type Client: Send + Sync;
    /// The [`descriptor::flags`] the generated dispatch function earns its exports
    /// ([`descriptor::flags::BYTES_ALONE`]); 0 for one generated by an earlier
    /// tomada-macros, whose dispatch function knows no such bit.
    #[doc(hidden)]
    const DISPATCH_FLAGS: u32 = 0;

    /// Wraps a plugin instance, in this process or behind a channel.
    ///
    /// # Safety
    /// A local target's `vtable` must point to a vtable of this contract's first
    /// `provided` methods (or more) and `this` to the instance made by the same
    /// plugin's `create`; both must outlive the client. A remote target's channel must
    /// lead to a plugin of this contract with at least `provided` methods.
    #[doc(hidden)]
    unsafe fn __client(raw: client::RawClient) -> Self::Client;

    /// The description of this contract's trait objects (`dyn C`).
    #[doc(hidden)]
    const OBJECT: interface::TypeRef;
    /// A `Box<dyn C>` as an object for the other side.
    #[doc(hidden)]
    fn __box_into_object(object: Box<Self>) -> ffi::RObject;
    /// An `Arc<dyn C>` as an object for the other side.
    #[doc(hidden)]
    fn __arc_into_object(object: std::sync::Arc<Self>) -> ffi::RObject;
    /// A `&dyn C` as an object for the other side.
    ///
    /// # Safety
    /// `object` must outlive the returned `RObject`.
    #[doc(hidden)]
    unsafe fn __ref_into_object(object: &Self) -> ffi::RObject;
    /// An object from the other side, as a client that implements the trait.
    ///
    /// # Safety
    /// `object` must have been made by this contract's object conversion.
    #[doc(hidden)]
    unsafe fn __object_into_client(object: ffi::RObject) -> Self::Client;
    /// A `Box<dyn C>` as an object kept for the other side of a channel.
    #[doc(hidden)]
    fn __export_box(object: Box<Self>) -> remote::Exported;
    /// An `Arc<dyn C>` as an object kept for the other side of a channel.
    #[doc(hidden)]
    fn __export_arc(object: std::sync::Arc<Self>) -> remote::Exported;
    /// A `&dyn C` as an object lent to the other side of a channel.
    ///
    /// # Safety
    /// `object` must outlive the returned `Exported` (the call).
    #[doc(hidden)]
    unsafe fn __export_ref(object: &Self) -> remote::Exported;
    /// An object of the other side of a channel, as a client that implements the trait.
    #[doc(hidden)]
    fn __remote_client(channel: std::sync::Arc<dyn client::Channel>) -> Self::Client;
    /// A client as a `Box<dyn C>`.
    #[doc(hidden)]
    fn __client_into_box(client: Self::Client) -> Box<Self>;
    /// A client as an `Arc<dyn C>`.
    #[doc(hidden)]
    fn __client_into_arc(client: Self::Client) -> std::sync::Arc<Self>;
    /// The client behind an object of the other side (see [`handle`]); `None` for an
    /// object of this side.
    #[doc(hidden)]
    fn __client_of(object: &Self) -> Option<&Self::Client>;
}

/// Exports a plugin: one line in a plugin crate (`crate-type = ["cdylib"]`).
///
/// ```ignore
/// tomada::export!(Hello as pluginapi::Greeter);
/// tomada::export!(Hello as pluginapi::Greeter = Hello::new("pt"));
/// tomada::export!(Hello as pluginapi::Greeter; name = "greeter", version = "1.0.0",
///                 description = "Plugin de exemplo que dá oi");
/// ```
///
/// The instance is made with `Default::default()` unless an expression follows `=`;
/// it is made when a host loads the plugin (a panic there is a load error) and
/// dropped when the host drops its handle. The constructor can read what the host
/// handed it with [`context()`] (see [`context`](mod@context)). Name, version and
/// description default to the crate's `name`, `version` and `description` in
/// `Cargo.toml`.
///
/// # Several exports
/// One library may export several implementations, of one contract or of several:
/// list them in the one `export!`, separated by `;`, each entry followed by its own
/// `key = value` line. Each needs its own name (two with the same name are a
/// compile error); at most 32.
///
/// ```ignore
/// tomada::export! {
///     Hello as pluginapi::Greeter; name = "hello", description = "says olá";
///     Hola as pluginapi::Greeter = Hola::new(&tomada::context()); name = "hola";
///     Memory as kv_api::Store; name = "memory", version = "2.0.0";
/// }
/// ```
///
/// A host's `load::<dyn C>` takes the one export of contract `C`, or the one it
/// names when there are several (`Loader::export("hola")`); `tomada inspect` lists
/// them all.
///
/// # What it emits
/// For each export: its manifest in the `.tomada` link section (readable without
/// loading the file) and its exported descriptor (symbol `TOMADA_DESCRIPTOR` for
/// the first, `TOMADA_DESCRIPTOR_<n>` for the others).
/// Once per library: [`SystemAlloc`] as the global allocator, so strings and byte
/// buffers cross without copies (a plugin cannot declare another
/// `#[global_allocator]`, nor call `export!` twice), and an initialiser that installs
/// the panic hook.
#[macro_export]
macro_rules! export {
    ($($entries:tt)+) => {
        $crate::__export! { @parse [] {} $($entries)+ }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __export {
    // Parsing: `;`-separated segments. A segment `Type as Contract [= make]` starts
    // an entry; a segment `key = value, ...` adds to the entry before it. (The
    // `key = value` arm comes first: it gives up at the first token that does not
    // fit without committing to a parse, as a `ty` would.)
    (@parse [$($done:tt)*] { $t:tt $c:tt $m:tt [$($meta:tt)*] } $($key:ident = $value:expr),+ $(,)? $(; $($rest:tt)*)?) => {
        $crate::__export! { @parse [$($done)*] { $t $c $m [$($meta)* $($key = $value,)+] } $($($rest)*)? }
    };
    (@parse $done:tt {} $key:ident = $($rest:tt)*) => {
        ::core::compile_error!(concat!("tomada::export!: `", stringify!($key), " = ...` must follow an entry `Type as path::Contract`"));
    };
    (@parse [$($done:tt)*] $current:tt $ty:ty as $contract:path $(= $make:expr)? $(; $($rest:tt)*)?) => {
        $crate::__export! { @parse [$($done)* $current] { [$ty] [$contract] [$($make)?] [] } $($($rest)*)? }
    };
    (@parse [$($done:tt)*] $current:tt) => {
        $crate::__export! { @resolve [] [$($done)* $current] }
    };

    // Resolving each entry's metadata (defaults from Cargo.toml).
    (@resolve $ok:tt [{} $($pending:tt)*]) => {
        $crate::__export! { @resolve $ok [$($pending)*] }
    };
    (@resolve $ok:tt [{ $t:tt $c:tt $m:tt [$($meta:tt)*] } $($pending:tt)*]) => {
        $crate::__export! {
            @meta $ok [$($pending)*] $t $c $m
            [env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"), env!("CARGO_PKG_DESCRIPTION")]
            $($meta)*
        }
    };
    (@resolve $ok:tt []) => {
        $crate::__export! { @emit $ok }
    };
    (@meta $ok:tt $p:tt $t:tt $c:tt $m:tt [$n:expr, $v:expr, $d:expr] name = $x:expr, $($rest:tt)*) => {
        $crate::__export! { @meta $ok $p $t $c $m [$x, $v, $d] $($rest)* }
    };
    (@meta $ok:tt $p:tt $t:tt $c:tt $m:tt [$n:expr, $v:expr, $d:expr] version = $x:expr, $($rest:tt)*) => {
        $crate::__export! { @meta $ok $p $t $c $m [$n, $x, $d] $($rest)* }
    };
    (@meta $ok:tt $p:tt $t:tt $c:tt $m:tt [$n:expr, $v:expr, $d:expr] description = $x:expr, $($rest:tt)*) => {
        $crate::__export! { @meta $ok $p $t $c $m [$n, $v, $x] $($rest)* }
    };
    (@meta $ok:tt $p:tt $t:tt $c:tt $m:tt $strings:tt $key:ident = $($rest:tt)*) => {
        ::core::compile_error!(concat!("tomada::export!: unknown key `", stringify!($key), "`; expected `name`, `version` or `description`"));
    };
    (@meta [$($ok:tt)*] $p:tt $t:tt $c:tt $m:tt $strings:tt) => {
        $crate::__export! { @resolve [$($ok)* { $t $c $m $strings }] $p }
    };

    // Emitting: what the library has once (the allocator, the initialiser, and the
    // manifests of all exports as one static, in index order, so the section starts
    // with the first export's, as a host that reads one manifest expects), then each
    // export's descriptor.
    (@emit [$({ $t:tt [$c:path] $m:tt [$n:expr, $v:expr, $d:expr] })+]) => {
        const _: () = {
            $crate::global_allocator!();

            ::core::assert!(
                $crate::__private::descriptor::distinct(&[$($n),+]),
                "tomada::export!: two exports have the same name; give each its own `name = \"...\"`"
            );

            // The plugin's initialiser installs its panic hook while the library is
            // opened, so the first panic is already reported as a value, and so that
            // cost (paging in std's panic machinery) belongs to opening the file, not
            // to tomada's checks. `create` installs it too, where initialisers do not run.
            extern "C" fn __init() {
                $crate::__private::call::__install_panic_hook();
            }
            #[used]
            #[cfg_attr(
                any(target_os = "linux", target_os = "android", target_os = "freebsd", target_os = "netbsd", target_os = "openbsd", target_os = "dragonfly", target_os = "illumos"),
                unsafe(link_section = ".init_array")
            )]
            #[cfg_attr(target_vendor = "apple", unsafe(link_section = "__DATA,__mod_init_func"))]
            #[cfg_attr(windows, unsafe(link_section = ".CRT$XCU"))]
            static __INIT: extern "C" fn() = __init;

            const __FLAGS: u32 = $crate::__private::descriptor::flags::NATIVE_RECORDS | if cfg!(panic = "unwind") { $crate::__private::descriptor::flags::PANIC_UNWIND } else { 0 };
            const __LEN: usize = 0 $(+ $crate::__export!(@len [$c] [$n, $v, $d]))+;
            #[used]
            #[cfg_attr(target_vendor = "apple", unsafe(link_section = "__DATA,__tomada"))]
            #[cfg_attr(not(target_vendor = "apple"), unsafe(link_section = ".tomada"))]
            static __MANIFESTS: [u8; __LEN] = $crate::__export!(
                @manifests [
                    (0, "") (1, "_1") (2, "_2") (3, "_3") (4, "_4") (5, "_5") (6, "_6") (7, "_7")
                    (8, "_8") (9, "_9") (10, "_10") (11, "_11") (12, "_12") (13, "_13") (14, "_14") (15, "_15")
                    (16, "_16") (17, "_17") (18, "_18") (19, "_19") (20, "_20") (21, "_21") (22, "_22") (23, "_23")
                    (24, "_24") (25, "_25") (26, "_26") (27, "_27") (28, "_28") (29, "_29") (30, "_30") (31, "_31")
                ]
                [] $({ [$c] [$n, $v, $d] })+
            );

            $crate::__export! {
                @each [
                    (0, "") (1, "_1") (2, "_2") (3, "_3") (4, "_4") (5, "_5") (6, "_6") (7, "_7")
                    (8, "_8") (9, "_9") (10, "_10") (11, "_11") (12, "_12") (13, "_13") (14, "_14") (15, "_15")
                    (16, "_16") (17, "_17") (18, "_18") (19, "_19") (20, "_20") (21, "_21") (22, "_22") (23, "_23")
                    (24, "_24") (25, "_25") (26, "_26") (27, "_27") (28, "_28") (29, "_29") (30, "_30") (31, "_31")
                ]
                [0]
                $({ $t [$c] $m [$n, $v, $d] })+
            }
        };
    };
    (@len [$c:path] [$n:expr, $v:expr, $d:expr]) => {
        $crate::__private::descriptor::encoded_len(&[$n, $v, $d, $crate::__private::RUSTC_VERSION, $crate::__private::TARGET], &<dyn $c as $crate::Contract>::DESCRIPTION)
    };
    // The manifests' bytes, concatenated: each entry's encoded with its index.
    (@manifests [($index:literal, $suffix:literal) $($indices:tt)*] [$($parts:tt)*] { [$c:path] [$n:expr, $v:expr, $d:expr] } $($more:tt)*) => {
        $crate::__export!(
            @manifests [$($indices)*]
            [$($parts)* &$crate::__private::descriptor::encode_export::<{ $crate::__export!(@len [$c] [$n, $v, $d]) }>(
                __FLAGS | <dyn $c as $crate::Contract>::DISPATCH_FLAGS,
                $index,
                &[$n, $v, $d, $crate::__private::RUSTC_VERSION, $crate::__private::TARGET],
                &<dyn $c as $crate::Contract>::DESCRIPTION,
            ),]
            $($more)*
        )
    };
    (@manifests [$($indices:tt)*] [$($parts:tt)*]) => {
        $crate::__private::descriptor::concat::<__LEN>(&[$($parts)*])
    };
    (@manifests [] $parts:tt $($more:tt)+) => {
        ::core::compile_error!("tomada::export!: at most 32 exports per library")
    };
    (@each [($index:literal, $suffix:literal) $($indices:tt)*] [$($offset:tt)*] { $t:tt [$c:path] $m:tt $strings:tt } $($more:tt)*) => {
        $crate::__export! { @entry $index $suffix [$($offset)*] $t [$c] $m $strings }
        $crate::__export! { @each [$($indices)*] [$($offset)* + $crate::__export!(@len [$c] $strings)] $($more)* }
    };
    (@each [$($indices:tt)*] $offset:tt) => {};
    (@each [] $offset:tt $($more:tt)+) => {
        ::core::compile_error!("tomada::export!: at most 32 exports per library");
    };

    (@make $ty:ty) => { <$ty as ::core::default::Default>::default() };
    (@make $ty:ty, $make:expr) => { $make };

    (@entry $index:literal $suffix:literal [$($offset:tt)*] [$ty:ty] [$contract:path] [$($make:expr)?] [$n:expr, $v:expr, $d:expr]) => {
        const _: () = {
            type __Plugin = $ty;
            type __Contract = dyn $contract;

            const __OFFSET: usize = $($offset)*;
            const __MANIFEST_LEN: usize = $crate::__export!(@len [$contract] [$n, $v, $d]);

            static __VTABLE: <__Contract as $crate::Contract>::VTable = <__Contract>::__tomada_vtable::<__Plugin>();
            // A contract with `async fn`s: its impl was written under `#[tomada::implement]`.
            const _: () = <__Contract>::__tomada_implemented::<$ty>();

            unsafe extern "C" fn __create(
                out: *mut *const ::core::ffi::c_void,
                panic: *mut $crate::__private::ffi::RVec,
            ) -> $crate::__private::ffi::Status {
                // SAFETY: the host passes writable `out` and `panic` (descriptor contract).
                unsafe { $crate::__private::call::__create_export::<__Plugin>($n, out, panic, || $crate::__export!(@make $ty $(, $make)?)) }
            }

            unsafe extern "C" fn __create_with(
                out: *mut *const ::core::ffi::c_void,
                panic: *mut $crate::__private::ffi::RVec,
                context: $crate::__private::ffi::RSlice,
            ) -> $crate::__private::ffi::Status {
                // SAFETY: the host passes writable `out` and `panic`, and a `context`
                // readable for the call (descriptor contract).
                unsafe {
                    $crate::__private::call::__create_with::<__Plugin>($n, out, panic, context, || $crate::__export!(@make $ty $(, $make)?))
                }
            }

            unsafe extern "C" fn __destroy(
                this: *const ::core::ffi::c_void,
                panic: *mut $crate::__private::ffi::RVec,
            ) -> $crate::__private::ffi::Status {
                // SAFETY: the host passes the instance `__create` made, once, and a
                // writable `panic` (descriptor contract).
                unsafe { $crate::__private::call::__destroy_export::<__Plugin>($n, this, panic) }
            }

            #[unsafe(export_name = concat!("TOMADA_DESCRIPTOR", $suffix))]
            static __DESCRIPTOR: $crate::__private::descriptor::Descriptor = $crate::__private::descriptor::Descriptor {
                header: $crate::__private::descriptor::Header {
                    magic: $crate::__private::descriptor::MAGIC,
                    boundary: $crate::__private::descriptor::BOUNDARY_VERSION,
                    size: ::core::mem::size_of::<$crate::__private::descriptor::Descriptor>() as u32,
                },
                abi: <__Contract as $crate::Contract>::ABI,
                flags: __FLAGS | <__Contract as $crate::Contract>::DISPATCH_FLAGS,
                fingerprint: <__Contract as $crate::Contract>::FINGERPRINT,
                contract: $crate::__private::ffi::RSlice::new(<__Contract as $crate::Contract>::NAME.as_bytes()),
                manifest: $crate::__private::ffi::RSlice::new(__MANIFESTS.split_at(__OFFSET).1.split_at(__MANIFEST_LEN).0),
                vtable: &__VTABLE as *const _ as *const ::core::ffi::c_void,
                create: __create,
                destroy: __destroy,
                dispatch: <__Contract>::__tomada_dispatch::<__Plugin>,
                attach: $crate::__private::logging::attach,
                create_with: ::core::option::Option::Some(__create_with),
            };
        };
    };
}

/// Records, in a host executable, the contracts it expects plugins to implement, so
/// `tomada diff plugin.so host` can compare them without running either. One line at
/// the top level of the host's binary crate:
///
/// ```
/// #[tomada::contract(abi = 1, name = "demo::Greeter")]
/// pub trait Greeter { fn greet(&self, name: &str) -> String; }
///
/// tomada::expects!(Greeter);
/// # fn main() {}
/// ```
///
/// It writes each contract's description ([`interface`]) into a link section of its
/// own (`.tomada.host`; `__DATA,__tomada_host` on Apple platforms, `.tomadah` on
/// Windows), read by `tomada diff` and `tomada_host::expectations`.
///
/// # Platform-specific behaviour
/// On Windows a C runtime initialiser (`.CRT$XCU`) refers to the record, so GNU ld's
/// section garbage collection keeps it; it runs at start-up and does nothing else.
#[macro_export]
macro_rules! expects {
    ($($contract:path),+ $(,)?) => {$(
        const _: () = {
            const __LEN: usize = $crate::__private::descriptor::expectation_len(&<dyn $contract as $crate::Contract>::DESCRIPTION);
            #[used]
            #[cfg_attr(target_vendor = "apple", unsafe(link_section = "__DATA,__tomada_host"))]
            #[cfg_attr(windows, unsafe(link_section = ".tomadah"))]
            #[cfg_attr(not(any(target_vendor = "apple", windows)), unsafe(link_section = ".tomada.host"))]
            static __TOMADA_EXPECTS: [u8; __LEN] =
                $crate::__private::descriptor::encode_expectation::<__LEN>(&<dyn $contract as $crate::Contract>::DESCRIPTION);

            // GNU ld's section garbage collection (on by default for Windows targets)
            // drops a section nothing refers to, `#[used]` or not. A C runtime
            // initialiser (`.CRT$XCU`, which the linker script always keeps) that takes
            // the record's address keeps it in the executable; it does nothing else.
            #[cfg(windows)]
            extern "C" fn __tomada_keep_expects() {
                ::core::hint::black_box(&__TOMADA_EXPECTS);
            }
            #[cfg(windows)]
            #[used]
            #[unsafe(link_section = ".CRT$XCU")]
            static __TOMADA_KEEP_EXPECTS: extern "C" fn() = __tomada_keep_expects;
        };
    )+};
}
