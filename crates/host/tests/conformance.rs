//! The conformance suite: what a plugin does through its contract — every supported
//! type, objects both ways (the plugin's objects kept by the host, the host's
//! objects lent for a call or kept by the plugin, callbacks that call the plugin
//! again), async methods, panics and errors — is the same wherever it runs. Each case
//! is written once, as a function of [`Via`] (where its plugins run), and
//! `conformance!` makes one `#[test]` of it per mode: `conformance::in_process::CASE`,
//! `conformance::isolated::CASE` (a child process) and `conformance::remote::CASE` (a
//! child process of a server this test process runs, over TLS on 127.0.0.1). A failure
//! names the case and the mode.
//!
//! The remote server is the library's own [`Server`](tomada_host::remote::Server),
//! isolated and sandboxed as `tomada serve` runs it, in a thread of this test
//! process. What only remote plugins have (keys refused, servers killed or full,
//! packets lost) is tested against a real `tomada serve` in `crates/cli/tests/remote.rs`;
//! what only isolated plugins have (crashes, processes, deadlines) in `isolate.rs`,
//! `objects.rs` and `asyncs.rs`.

use std::collections::{BTreeSet, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Waker};

use allround_api::{Allround, Failure, Nothing, Person, Point, Scalars};
use async_api::Lookup;
use indexer_api::{Host, Indexer, Level, Visitor};
use kv_api::{CAPACITY, Entry, Kind, Meta, Store, StoreError};
use tomada_host::isolate::Mode;
use tomada_host::{CallError, Contract, Plugin};
use tomada_test_support::{cdylib, wait_until};

use crate::asyncs::{Config, Notes, block_on, start_then_drop_a_stall, tokio};
use crate::objects::Recorder;

/// Where a case's plugins run.
#[derive(Clone, Copy, Debug)]
pub enum Via {
    /// Loaded into this process (`Mode::InProcess`).
    InProcess,
    /// In a child process of their own (`Mode::Isolated`).
    #[cfg(any(unix, windows))]
    Isolated,
    /// In a child process of a server, reached over TLS (`Mode::Remote`).
    #[cfg(target_os = "linux")]
    Remote,
}

impl Via {
    /// Loads the fixture plugin `fixture` (a package under `tests/plugins`) as `C`,
    /// here: a new instance each time, in a new process when isolated or remote.
    pub fn load<C: ?Sized + Contract>(self, fixture: &str) -> Plugin<C> {
        let path = cdylib(fixture);
        let loaded = match self {
            Via::InProcess => tomada_host::load_with::<C>(&path, &Mode::InProcess),
            #[cfg(any(unix, windows))]
            Via::Isolated => tomada_host::load_with::<C>(&path, &Mode::Isolated(crate::everywhere::isolation())),
            #[cfg(target_os = "linux")]
            Via::Remote => served::load::<C>(fixture),
        };
        loaded.unwrap_or_else(|e| panic!("loading `{fixture}` {self:?}: {e}"))
    }
}

/// The server remote cases load from: started once per test process, on first use.
#[cfg(target_os = "linux")]
mod served {
    use std::path::PathBuf;
    use std::sync::OnceLock;

    use tomada_host::isolate::{Mode, Sandbox};
    use tomada_host::remote::{Identity, KeyId, Remote, Server};
    use tomada_host::{Contract, LoadError, Loader, Plugin};
    use tomada_test_support::{HANG_GUARD, cdylib};

    /// The fixtures the cases load.
    const FIXTURES: [&str; 4] = ["allround", "kv", "indexer", "async-plugin"];

    /// What a host needs to reach the server.
    struct Served {
        address: String,
        server: KeyId,
        client: Identity,
    }

    fn served() -> &'static Served {
        static SERVED: OnceLock<Served> = OnceLock::new();
        SERVED.get_or_init(|| {
            let (server, client) = (Identity::generate().unwrap(), Identity::generate().unwrap());
            let plugins: Vec<PathBuf> = FIXTURES.iter().map(|f| cdylib(f)).collect();
            // As `tomada serve` runs them (sandboxed), with a hang guard for starting
            // a plugin's process on a busy machine.
            let isolation = crate::isolate::isolation()
                .startup(HANG_GUARD)
                .sandbox(Sandbox::new().deny_network().deny_exec().accept_weaker_kernel());
            let listening =
                Server::bind("127.0.0.1:0", &server, &[client.id()], &Loader::new(), &plugins, isolation).unwrap();
            let address = listening.local_addr().unwrap().to_string();
            // It serves until the test process ends.
            std::thread::Builder::new()
                .name("conformance-server".into())
                .spawn(move || listening.run().expect("the conformance server's listener"))
                .unwrap();
            Served { address, server: server.id(), client }
        })
    }

    /// Loads `fixture` from the server, by its file name. Deadlines are hang guards
    /// only: a busy machine may be slow.
    pub fn load<C: ?Sized + Contract>(fixture: &str) -> Result<Plugin<C>, LoadError> {
        tomada_host::load_with::<C>(file_name(fixture), &Mode::Remote(remote(&served().address)))
    }

    /// The server's plugin at `address` (the server's, or a proxy's), with hang
    /// guards for deadlines.
    fn remote(address: &str) -> Remote {
        let served = served();
        Remote::new(served.client.clone())
            .endpoint(address)
            .trust_server(served.server)
            .deadline(HANG_GUARD)
            .connect_timeout(HANG_GUARD)
    }

    fn file_name(fixture: &str) -> String {
        cdylib(fixture).file_name().unwrap().to_string_lossy().into_owned()
    }

    /// [`load`], from the server's `address` instead (a proxy in front of it).
    pub fn load_through<C: ?Sized + Contract>(fixture: &str, address: &str) -> Result<Plugin<C>, LoadError> {
        tomada_host::load_with::<C>(file_name(fixture), &Mode::Remote(remote(address)))
    }

    /// [`load`], naming the plugin by its whole path, as the same host's in-process
    /// load would.
    pub fn load_by_path<C: ?Sized + Contract>(fixture: &str) -> Result<Plugin<C>, LoadError> {
        tomada_host::load_with::<C>(cdylib(fixture), &Mode::Remote(remote(&served().address)))
    }

    /// The server's address.
    pub fn address() -> String {
        served().address.clone()
    }

    /// [`load`], by a `Loader` with `policy`.
    pub fn load_under<C: ?Sized + Contract>(
        fixture: &str,
        policy: tomada_host::TrustPolicy,
    ) -> Result<Plugin<C>, LoadError> {
        Loader::new().mode(Mode::Remote(remote(&served().address))).policy(policy).load::<C>(file_name(fixture))
    }
}

/// A reconnection made for a call (the connection broke between calls) takes no more
/// than what the call's deadline leaves: a server that takes the connection and never
/// answers (stopped; another service on the port) fails the call within its 300 ms
/// scope with a reason that says so, not after a whole `Remote::connect_timeout`
/// (here the hang guard: the old code tripped it) with "resource temporarily
/// unavailable".
#[cfg(target_os = "linux")]
#[test]
fn a_reconnection_made_for_a_call_takes_no_more_than_its_deadline_leaves() {
    use std::net::{Shutdown, TcpListener, TcpStream};
    use tomada_host::isolate::with_deadline;
    use tomada_test_support::within;
    // A proxy in front of the server: it forwards the first connections, and once
    // `silent`, takes new ones and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy = listener.local_addr().unwrap().to_string();
    let silent = Arc::new(AtomicBool::new(false));
    let forwarded: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
    let server = served::address();
    {
        let (silent, forwarded) = (Arc::clone(&silent), Arc::clone(&forwarded));
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if silent.load(Ordering::SeqCst) {
                    held.push(client);
                    continue;
                }
                let upstream = TcpStream::connect(&server).unwrap();
                forwarded.lock().unwrap().extend([client.try_clone().unwrap(), upstream.try_clone().unwrap()]);
                for (mut from, mut to) in
                    [(client.try_clone().unwrap(), upstream.try_clone().unwrap()), (upstream, client)]
                {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(Shutdown::Both);
                    });
                }
            }
        });
    }
    let plugin = served::load_through::<dyn Store>("kv", &proxy).unwrap();
    assert_eq!(plugin.keys(), Ok(Vec::new()));
    // The server now takes connections and never answers; the live one is cut.
    silent.store(true, Ordering::SeqCst);
    for stream in forwarded.lock().unwrap().drain(..) {
        let _ = stream.shutdown(Shutdown::Both);
    }
    let errors = within("calls that must reconnect, in 300 ms scopes", move || {
        // (The first may go out on the cut connection before its end is seen: the
        // next one reconnects.)
        (0..3)
            .map(|_| with_deadline(std::time::Duration::from_millis(300), || plugin.keys()).unwrap_err())
            .collect::<Vec<_>>()
    });
    // (Or, on a machine too busy to start the reconnection within the scope, its
    // deadline spent before it began: bounded by the deadline all the same.)
    let bounded = |detail: &str| {
        detail.contains("did not answer within") || detail.contains("deadline passed before a connection")
    };
    assert!(errors.iter().any(|e| matches!(e, CallError::Unavailable { detail } if bounded(detail))), "{errors:?}");
}

/// A host that names a remote plugin by its path (its in-process call, only the
/// `Mode` changed) gets the plugin the server serves under that file name (the whole
/// path was sent, and refused: "this server serves no plugin of that name").
#[cfg(target_os = "linux")]
#[test]
fn a_remote_plugin_named_by_its_path_is_asked_for_by_its_file_name() {
    let plugin = served::load_by_path::<dyn Store>("kv").unwrap();
    assert_eq!(plugin.keys(), Ok(Vec::new()));
}

/// A remote plugin is held to the host's trust policy as far as it can be: its
/// minimum versions, against the manifest the server sent; a policy of signatures or
/// pins, which the host cannot check without the file, refuses the load. (The
/// policy was skipped: a plugin older than the minimum loaded.)
#[cfg(target_os = "linux")]
#[test]
fn a_remote_load_is_held_to_the_hosts_trust_policy_as_far_as_it_can_be() {
    use tomada_host::TrustPolicy;
    let plugin = served::load::<dyn Store>("kv").unwrap();
    let (name, version) = (plugin.info().name.clone(), plugin.info().version.clone());
    drop(plugin);
    let policy = TrustPolicy::new().min_version(name.as_str(), "999.0.0").unwrap();
    let err = served::load_under::<dyn Store>("kv", policy).map(drop).unwrap_err();
    assert!(matches!(&err, tomada_host::LoadError::VersionTooOld { found, .. } if *found == version), "{err:?}");
    let policy = TrustPolicy::new().min_version(name.as_str(), &version).unwrap();
    let plugin = served::load_under::<dyn Store>("kv", policy).unwrap();
    assert_eq!(plugin.info().name, name);
    drop(plugin);
    let policy = TrustPolicy::new().pin(name.as_str(), &"00".repeat(32)).unwrap();
    let err = served::load_under::<dyn Store>("kv", policy).map(drop).unwrap_err();
    assert!(matches!(&err, tomada_host::LoadError::Unavailable { .. }), "{err:?}");
    assert!(err.to_string().contains("cannot check for a remote plugin"), "{err}");
}

/// Each case, once per mode this platform has.
macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        /// In this process.
        mod in_process {
            $(#[test] fn $case() { super::$case(super::Via::InProcess) })*
        }
        /// In a child process.
        #[cfg(any(unix, windows))]
        mod isolated {
            $(#[test] fn $case() { super::$case(super::Via::Isolated) })*
        }
        /// In a child process of a server, over TLS.
        #[cfg(target_os = "linux")]
        mod remote {
            $(#[test] fn $case() { super::$case(super::Via::Remote) })*
        }
    };
}

conformance!(
    // Every supported type (`allround`, `kv`).
    integers_of_every_width,
    bool_and_char,
    strings_and_bytes,
    options_and_results,
    structs,
    unit_methods_and_state,
    a_natural_contract_with_maps_sets_enums_and_boxes,
    the_error_enum_says_full_at_capacity,
    a_thousand_entries_cross_and_come_back,
    // Objects both ways, callbacks (`indexer`).
    the_plugin_calls_back_into_a_host_service_during_a_call,
    objects_the_plugin_makes_outlive_the_call_and_come_from_objects,
    objects_in_options_results_and_vecs,
    a_host_service_kept_by_the_plugin_lives_until_the_plugin_lets_go,
    arcs_cross_both_ways,
    callbacks_inside_callbacks_are_re_entrant,
    re_entrant_callbacks_from_several_threads_at_once,
    objects_live_on_after_the_plugin_handle_drops,
    the_instance_drop_runs_to_its_end_when_nothing_else_keeps_the_plugin,
    handles_go_back_to_a_plugin,
    // Async methods (`async-plugin`, `indexer`).
    async_methods_answer_with_a_minimal_executor,
    async_methods_answer_with_tokio_concurrently,
    an_async_method_returns_an_object,
    dropping_the_hosts_future_drops_the_plugins_future,
    // Panics and errors.
    panics_carry_their_message,
    a_failing_host_callback_fails_the_outer_call_not_the_host,
    a_panic_in_the_plugins_future_is_an_error,
    a_panicking_plugins_objects_fail_with_an_error,
);

// ---------------------------------------------------------------------------------
// Every supported type: integers of every width, floats, bool, char, strings and
// bytes (borrowed and owned, empty and large), options and results (nested), structs,
// tuple and unit structs (`allround`); enums with data, maps, sets, tuples, arrays,
// boxes, a borrowed slice of strings (`kv`).

fn allround(via: Via) -> Plugin<dyn Allround> {
    via.load::<dyn Allround>("allround")
}

fn integers_of_every_width(via: Via) {
    let p = allround(via);
    assert_eq!(p.add(u64::MAX, 2).unwrap(), 1);
    let s = Scalars {
        i8: i8::MAX,
        i16: -2,
        i32: i32::MIN,
        i64: 1 << 40,
        i128: i128::MAX - 1,
        isize: -1,
        u8: u8::MAX,
        u16: 65534,
        u32: 7,
        u64: u64::MAX,
        u128: u128::MAX,
        usize: 9,
        f32: 1.5,
        f64: -0.25,
        bool: true,
        char: 'a',
    };
    let stepped = p.step(s).unwrap();
    assert_eq!(
        stepped,
        Scalars {
            i8: i8::MIN,
            i16: -1,
            i32: i32::MIN + 1,
            i64: (1 << 40) + 1,
            i128: i128::MAX,
            isize: 0,
            u8: 0,
            u16: 65535,
            u32: 8,
            u64: 0,
            u128: 0,
            usize: 10,
            f32: 3.0,
            f64: -0.5,
            bool: false,
            char: 'b',
        }
    );
    let sum = p.sum(-1, -2, -3, -4, -(1i128 << 100), -6, 1, 2, 3, 4, 1u128 << 100, 6, 7.9, 8.9, true, 'A').unwrap();
    // The ±2^100 cancel, the small ints cancel to 0, then 7 (7.9) + 8 (8.9) + 1 (true) + 65 ('A').
    assert_eq!(sum, 81);
}

fn bool_and_char(via: Via) {
    let p = allround(via);
    assert!(!p.not(true).unwrap());
    assert!(p.not(false).unwrap());
    assert_eq!(p.next_char('z').unwrap(), '{');
    assert_eq!(p.next_char('🙂').unwrap(), '🙃');
}

fn strings_and_bytes(via: Via) {
    let p = allround(via);
    assert_eq!(p.upper("olá, mundo").unwrap(), "OLÁ, MUNDO");
    assert_eq!(p.upper("").unwrap(), "");
    assert_eq!(p.concat("dono ".to_owned(), "emprestado").unwrap(), "dono emprestado");
    assert_eq!(p.reverse(&[1, 2, 3]).unwrap(), vec![3, 2, 1]);
    assert_eq!(p.reverse(&[]).unwrap(), Vec::<u8>::new());
    let big = vec![7u8; 1 << 20];
    assert_eq!(p.len(big).unwrap(), 1 << 20);
    p.empty(String::new(), Vec::new()).unwrap();
}

fn options_and_results(via: Via) {
    let p = allround(via);
    assert_eq!(p.parse("-42").unwrap(), Some(-42));
    assert_eq!(p.parse("x").unwrap(), None);
    assert_eq!(p.or_default(Some("valor".into())).unwrap(), "valor");
    assert_eq!(p.or_default(None).unwrap(), "default");
    assert_eq!(p.divide(7, 2).unwrap(), Ok(3));
    assert_eq!(p.divide(7, 0).unwrap(), Err("cannot divide 7 by 0".to_owned()));
    assert_eq!(p.check(Ok(5)).unwrap(), Ok("5".to_owned()));
    assert_eq!(
        p.check(Err(Failure { code: 1, message: "falhou".into() })).unwrap(),
        Err(Failure { code: 2, message: "falhou".into() })
    );
    for v in [None, Some(Err(Nothing)), Some(Ok(None)), Some(Ok(Some(21)))] {
        let expected = v.map(|r| r.map(|o| o.map(|n: u8| n * 2)));
        assert_eq!(p.nested(v).unwrap(), expected);
    }
}

fn structs(via: Via) {
    let p = allround(via);
    let person = Person { name: "ana".into(), age: 30, nickname: None, photo: vec![1, 2], position: Point(1.0, -2.0) };
    assert_eq!(
        p.birthday(person).unwrap(),
        Person {
            name: "ANA".into(),
            age: 31,
            nickname: Some("aniversariante".into()),
            photo: vec![1, 2, 0xFF],
            position: Point(-1.0, 2.0),
        }
    );
}

fn unit_methods_and_state(via: Via) {
    let p = allround(via);
    let before = p.touches().unwrap();
    p.touch().unwrap();
    p.touch().unwrap();
    assert_eq!(p.touches().unwrap(), before + 2);
}

fn panics_carry_their_message(via: Via) {
    let err = allround(via).fail("falha de propósito").unwrap_err();
    assert!(
        matches!(&err, CallError::Panicked { message } if message.starts_with("falha de propósito (at ")),
        "{err:?}"
    );
}
fn entry(key: &str, kind: Kind, value: &[u8], tags: &[&str]) -> Entry {
    Entry {
        key: key.into(),
        value: value.to_vec(),
        meta: Meta { kind, created: 1_700_000_000, owner: (kind == Kind::Link).then(|| "ana".to_owned()) },
        tags: tags.iter().map(|t| t.to_string()).collect(),
        previous: None,
    }
}

fn a_natural_contract_with_maps_sets_enums_and_boxes(via: Via) {
    let store = via.load::<dyn Store>("kv");
    assert_eq!(store.put(entry("a", Kind::Text, b"1", &["x"])).unwrap(), Ok(None));
    let replaced = store.put(entry("a", Kind::Blob, b"22", &["y", "z"])).unwrap().unwrap();
    assert_eq!(replaced.map(|e| e.value), Some(b"1".to_vec()));
    let got = store.get("a").unwrap().unwrap();
    assert_eq!(got.meta.kind, Kind::Blob);
    assert_eq!(got.previous.as_ref().map(|p| p.tags.clone()), Some(vec!["x".to_owned()]));
    assert_eq!(store.get("nope").unwrap(), Err(StoreError::NotFound("nope".into())));
    assert_eq!(
        store.put(entry("", Kind::Text, b"", &[])).unwrap(),
        Err(StoreError::Other { code: 22, message: "an empty key".into() })
    );
    store.put(entry("link", Kind::Link, b"", &["z"])).unwrap().unwrap();
    let items = vec![("b".to_owned(), b"bee".to_vec()), ("c".to_owned(), vec![]), ("a".to_owned(), vec![9])];
    assert_eq!(store.put_many(items).unwrap(), Ok(2));
    assert_eq!(store.keys().unwrap(), ["a", "b", "c", "link"]);
    let dump = store.dump().unwrap();
    assert_eq!((dump.len(), dump["b"].as_slice()), (4, &b"bee"[..]));
    let by_kind = store.by_kind().unwrap();
    assert_eq!(by_kind[&Kind::Text], BTreeSet::from(["a".to_owned(), "b".into(), "c".into()]));
    assert_eq!(by_kind[&Kind::Link], BTreeSet::from(["link".to_owned()]));
    assert!(!by_kind.contains_key(&Kind::Blob));
    assert_eq!(store.tagged(&["z".to_owned(), "q".to_owned()]).unwrap(), HashSet::from(["link".to_owned()]));
    assert_eq!(store.tagged(&[]).unwrap(), HashSet::new());
    assert_eq!(store.address().unwrap(), [127, 0, 0, 1]);
    store.set_read_only(true).unwrap();
    assert_eq!(store.put(entry("d", Kind::Text, b"", &[])).unwrap(), Err(StoreError::ReadOnly));
    store.set_read_only(false).unwrap();
}

fn the_error_enum_says_full_at_capacity(via: Via) {
    let store = via.load::<dyn Store>("kv");
    let items: Vec<(String, Vec<u8>)> = (0..CAPACITY).map(|i| (format!("k{i:04}"), vec![i as u8])).collect();
    assert_eq!(store.put_many(items).unwrap(), Ok(CAPACITY as u32));
    assert_eq!(store.put(entry("one more", Kind::Text, b"", &[])).unwrap(), Err(StoreError::Full));
    assert_eq!(store.keys().unwrap().len(), CAPACITY);
}

fn a_thousand_entries_cross_and_come_back(via: Via) {
    let entries: Vec<Entry> = (0..1_000)
        .map(|i| {
            let mut e =
                entry(&format!("entry {i}"), [Kind::Text, Kind::Blob, Kind::Link][i % 3], &[i as u8; 16], &["t"]);
            e.previous = (i % 10 == 0).then(|| Box::new(entry("old", Kind::Text, b"o", &[])));
            e
        })
        .collect();
    let store = via.load::<dyn Store>("kv");
    let back = store.echo(entries.clone()).unwrap();
    assert_eq!(back.len(), 1_000);
    for (a, b) in entries.iter().zip(&back) {
        assert_eq!(format!("{}!", a.key), b.key);
        assert_eq!((&a.value, &a.meta, &a.tags, &a.previous), (&b.value, &b.meta, &b.tags, &b.previous));
    }
}
// ---------------------------------------------------------------------------------
// Objects both ways (`indexer`): the host's objects lent for a call (`&dyn Host`,
// `&dyn Visitor`) or kept by the plugin (`Box<dyn Host>`, `Arc<dyn Host>`), the
// plugin's objects kept by the host (`Box<dyn Cursor>`, `Arc<dyn Cursor>`, in
// `Option`, `Result` and `Vec`) and handed back to a plugin, callbacks that call the
// plugin again.

fn indexer(via: Via) -> Plugin<dyn Indexer> {
    via.load::<dyn Indexer>("indexer")
}

fn the_plugin_calls_back_into_a_host_service_during_a_call(via: Via) {
    let plugin = indexer(via);
    let (_, host) = Recorder::new(vec![("lowercase", "yes")]);
    assert_eq!(plugin.index("Hello Tomada WORLD", &host), Ok(3));
    let lines = host.lines.lock().unwrap().clone();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[0], (Level::Debug, "indexing `hello`".into()));
    assert_eq!(lines[3], (Level::Info, "indexed 3 words".into()));
    assert_eq!(plugin.count(), Ok(3));
}

fn a_failing_host_callback_fails_the_outer_call_not_the_host(via: Via) {
    let plugin = indexer(via);
    let (_, mut host) = Recorder::new(vec![]);
    host.panic_on_log = true;
    let err = plugin.index("a b", &host).unwrap_err();
    let CallError::Panicked { message } = &err else { panic!("{err:?}") };
    assert!(message.contains("a call to `Host::log` through a tomada object failed"), "{message}");
    assert!(message.contains("the host refuses to log `indexing `a``"), "{message}");
    // The panic was the host's own callback's, and is said to be the object's code,
    // not "the plugin panicked" a second time inside the message.
    assert!(message.contains("failed: the object's code panicked: the host refuses"), "{message}");
    assert_eq!(message.matches("the plugin panicked").count(), 0, "{message}");
    // The plugin is still usable.
    host.panic_on_log = false;
    assert_eq!(plugin.index("c", &host), Ok(1));
}

fn objects_the_plugin_makes_outlive_the_call_and_come_from_objects(via: Via) {
    let plugin = indexer(via);
    let (_, host) = Recorder::new(vec![]);
    plugin.index("apple avocado banana apricot", &host).unwrap();
    let cursor = plugin.open("a").unwrap();
    assert_eq!(cursor.next(), Ok(Some("apple".into())));
    let fork = cursor.fork().unwrap();
    assert_eq!(cursor.next(), Ok(Some("avocado".into())));
    assert_eq!(fork.next(), Ok(Some("avocado".into())));
    assert_eq!(fork.next(), Ok(Some("apricot".into())));
    assert_eq!(fork.next(), Ok(None));
    let all = plugin.cursors().unwrap();
    let firsts: Vec<_> = all.iter().map(|c| c.next().unwrap().unwrap()).collect();
    assert_eq!(firsts, ["apple", "avocado", "banana", "apricot"]);
}

fn a_host_service_kept_by_the_plugin_lives_until_the_plugin_lets_go(via: Via) {
    let plugin = indexer(via);
    let (dropped, host) = Recorder::new(vec![]);
    let lines = Arc::new(Mutex::new(Vec::new()));
    struct Shared(Arc<Mutex<Vec<String>>>, Recorder);
    impl Host for Shared {
        fn log(&self, _: Level, message: &str) {
            self.0.lock().unwrap().push(message.to_owned());
        }
        fn config(&self, key: &str) -> Option<String> {
            self.1.config(key)
        }
    }
    plugin.attach(Box::new(Shared(Arc::clone(&lines), host))).unwrap();
    assert!(!dropped.load(Ordering::SeqCst), "kept by the plugin after the call");
    plugin.index("x y", &Recorder::new(vec![]).1).unwrap();
    // Several threads use the kept service at once.
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| assert_eq!(plugin.flush(), Ok(2)));
        }
    });
    assert_eq!(lines.lock().unwrap().iter().filter(|l| *l == "flushing 2 words").count(), 8);
    assert_eq!(plugin.detach(), Ok(true));
    assert!(dropped.load(Ordering::SeqCst), "released when the plugin drops it");

    // Dropping the plugin drops what it still holds.
    let (dropped, host) = Recorder::new(vec![]);
    plugin.attach(Box::new(host)).unwrap();
    drop(plugin);
    assert!(dropped.load(Ordering::SeqCst));
}

fn arcs_cross_both_ways(via: Via) {
    let plugin = indexer(via);
    plugin.index("pear peach plum", &Recorder::new(vec![]).1).unwrap();
    let (dropped, host) = Recorder::new(vec![("prefix", "pe")]);
    let host: Arc<dyn Host> = Arc::new(host);
    // An `Arc<dyn Cursor>` result is the host's one handle: `Arc::new` shares it.
    let cursor = Arc::new(plugin.share(Arc::clone(&host)).unwrap());
    let again = Arc::clone(&cursor);
    assert_eq!(cursor.next(), Ok(Some("pear".into())));
    assert_eq!(again.next(), Ok(Some("peach".into())));
    assert_eq!(cursor.next(), Ok(None));
    drop(host);
    assert!(dropped.load(Ordering::SeqCst), "the plugin let go of its clone at the end of the call");
}

/// The host's visitor calls the plugin again from inside the plugin's call:
/// host → plugin → host → plugin.
fn callbacks_inside_callbacks_are_re_entrant(via: Via) {
    struct Counting(AtomicUsize);
    impl Visitor for Counting {
        fn visit(&self, word: &str, indexer: &dyn Indexer) -> bool {
            let n = self.0.fetch_add(1, Ordering::SeqCst);
            assert_eq!(indexer.count(), 4, "the plugin answers while its own call is in flight");
            let cursor = indexer.open(&word[..1]);
            assert!(cursor.next().is_some());
            n < 2
        }
    }
    let plugin = indexer(via);
    plugin.index("one two three four", &Recorder::new(vec![]).1).unwrap();
    let visitor = Counting(AtomicUsize::new(0));
    assert_eq!(plugin.walk(&visitor), Ok(3));
    assert_eq!(visitor.0.load(Ordering::SeqCst), 3);
}

/// Several host threads at once, each in a callback that calls the plugin again and
/// drives an object it returns: nothing waits for another thread's turn.
fn re_entrant_callbacks_from_several_threads_at_once(via: Via) {
    struct Deep(AtomicUsize);
    impl Visitor for Deep {
        fn visit(&self, word: &str, indexer: &dyn Indexer) -> bool {
            self.0.fetch_add(1, Ordering::SeqCst);
            let cursor = indexer.open(word);
            assert_eq!(cursor.next().as_deref(), Some(word));
            assert_eq!(cursor.fork().next(), None);
            true
        }
    }
    let plugin = indexer(via);
    plugin.index("w1 w2 w3 w4 w5", &Recorder::new(vec![]).1).unwrap();
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..5 {
                    let visitor = Deep(AtomicUsize::new(0));
                    assert_eq!(plugin.walk(&visitor), Ok(5));
                    assert_eq!(visitor.0.load(Ordering::SeqCst), 5);
                }
            });
        }
    });
}

/// A host service that keeps its lines where the test sees them, and says when it
/// is dropped.
struct Lines(Arc<Mutex<Vec<String>>>, Arc<AtomicBool>);

impl Host for Lines {
    fn log(&self, _: Level, message: &str) {
        self.0.lock().unwrap().push(message.to_owned());
    }
    fn config(&self, _: &str) -> Option<String> {
        None
    }
}

impl Drop for Lines {
    fn drop(&mut self) {
        self.1.store(true, Ordering::SeqCst);
    }
}

/// Objects outlive the `Plugin` handle and keep working (whatever keeps their code:
/// the library, or the plugin's process); the host objects the plugin holds are
/// dropped with it.
fn objects_live_on_after_the_plugin_handle_drops(via: Via) {
    let plugin = indexer(via);
    plugin.index("fig date", &Recorder::new(vec![]).1).unwrap();
    let cursor = plugin.open("d").unwrap();
    let (lines, dropped) = (Arc::new(Mutex::new(Vec::new())), Arc::new(AtomicBool::new(false)));
    plugin.attach(Box::new(Lines(Arc::clone(&lines), Arc::clone(&dropped)))).unwrap();
    let shared = plugin.share(Arc::new(Recorder::new(vec![("prefix", "f")]).1)).unwrap();
    drop(plugin);
    // The instance went with its handle, at once in both modes (isolated, `drop`
    // waits for it, while its process lives on for the objects): its `Drop` called the
    // host service it held, and let go of it.
    assert_eq!(lines.lock().unwrap().last().map(String::as_str), Some("dropped with the plugin"));
    assert!(dropped.load(Ordering::SeqCst), "the plugin's instance, and what it held, is gone");
    assert_eq!(cursor.next(), Ok(Some("date".into())));
    assert_eq!(cursor.fork().unwrap().next(), Ok(None));
    assert_eq!(shared.next(), Ok(Some("fig".into())));
    drop((cursor, shared));
}

/// With nothing else made by the plugin still held, dropping the `Plugin` runs the
/// instance's `Drop` to its end before `drop` returns, in every mode: isolated, the
/// process is ended only after the instance has gone (its `Drop` calling the host
/// service it held, then letting go of it), so what a `Drop` does (a file flushed, a
/// last message) is not cut short.
fn the_instance_drop_runs_to_its_end_when_nothing_else_keeps_the_plugin(via: Via) {
    for round in 0..3 {
        let plugin = indexer(via);
        plugin.index("fig date", &Recorder::new(vec![]).1).unwrap();
        let (lines, dropped) = (Arc::new(Mutex::new(Vec::new())), Arc::new(AtomicBool::new(false)));
        plugin.attach(Box::new(Lines(Arc::clone(&lines), Arc::clone(&dropped)))).unwrap();
        drop(plugin);
        assert_eq!(
            lines.lock().unwrap().last().map(String::as_str),
            Some("dropped with the plugin"),
            "round {round}: the instance's `Drop` ran, and reached the host, before `drop` returned"
        );
        assert!(dropped.load(Ordering::SeqCst), "round {round}: what the instance held is gone with it");
    }
}

/// `Option<Box<dyn Cursor>>`, `Result<Box<dyn Cursor>, String>` and
/// `Vec<Box<dyn Cursor>>` results, each side of them.
fn objects_in_options_results_and_vecs(via: Via) {
    let plugin = indexer(via);
    plugin.index("apple avocado banana apricot", &Recorder::new(vec![]).1).unwrap();
    assert!(plugin.find("kiwi").unwrap().is_none());
    assert_eq!(plugin.open_strict("k").unwrap().err().as_deref(), Some("no word starts with `k`"));
    let found = plugin.find("banana").unwrap().expect("a cursor");
    assert_eq!(found.next(), Ok(Some("banana".into())));
    let strict = plugin.open_strict("av").unwrap().expect("a cursor");
    assert_eq!(strict.next(), Ok(Some("avocado".into())));
    assert_eq!(strict.next(), Ok(None));
    let all = plugin.cursors().unwrap();
    assert_eq!(all.len(), 4);
    assert_eq!(all[3].next(), Ok(Some("apricot".into())));
}

/// The plugin's objects go back to a plugin (another instance) as the trait object:
/// given (`Box<dyn Cursor>`) and lent (`&dyn Cursor`).
fn handles_go_back_to_a_plugin(via: Via) {
    let maker = indexer(via);
    maker.index("apple avocado banana apricot", &Recorder::new(vec![]).1).unwrap();
    let user = indexer(via);
    let lent = maker.open("b").unwrap();
    assert_eq!(user.peek(&lent), Ok(Some("banana".into())));
    assert_eq!(user.peek(&lent), Ok(None), "the lent cursor moved on in its maker");
    assert_eq!(
        user.drain(Box::new(maker.open("a").unwrap())),
        Ok(vec!["apple".into(), "avocado".into(), "apricot".into()])
    );
    assert_eq!(user.count(), Ok(0), "the user's own index is its own");
}

// ---------------------------------------------------------------------------------
// Async methods (`async-plugin`): awaited with a minimal executor and with tokio, calls
// in flight at once, a callback during an async call, an object as an async result,
// and cancellation (dropping the host's future drops the plugin's).

fn lookup(via: Via) -> Plugin<dyn Lookup> {
    via.load::<dyn Lookup>("async-plugin")
}

fn async_methods_answer_with_a_minimal_executor(via: Via) {
    let lookup = lookup(via);
    assert_eq!(block_on(lookup.fetch("a", 5)), Ok(Some("a: fetched".to_owned())));
    assert_eq!(block_on(lookup.fetch("missing", 1)), Ok(None));
    assert_eq!(block_on(lookup.ask(&Config, "mode", &[1, 2, 3])), Ok(("fast".to_owned(), 6)));
    assert_eq!(lookup.plain(21), Ok(42));
}

fn async_methods_answer_with_tokio_concurrently(via: Via) {
    let lookup = lookup(via);
    tokio().block_on(async {
        // Three calls in flight on one thread: the slow one does not hold up the others.
        let slow = lookup.fetch("slow", 200);
        let (a, b, c) = tokio::join!(slow, lookup.fetch("b", 1), lookup.ask(&Config, "other", &[7]));
        assert_eq!(a, Ok(Some("slow: fetched".to_owned())));
        assert_eq!(b, Ok(Some("b: fetched".to_owned())));
        assert_eq!(c, Ok(("unset".to_owned(), 7)));
    });
}

/// An `async fn` returning `Box<dyn Cursor>` gives an object that works like any other.
fn an_async_method_returns_an_object(via: Via) {
    let plugin = indexer(via);
    plugin.index("apple avocado banana apricot", &Recorder::new(vec![]).1).unwrap();
    let later = block_on(plugin.open_later("ap")).unwrap();
    assert_eq!(later.next(), Ok(Some("apple".into())));
    assert_eq!(later.fork().unwrap().next(), Ok(Some("apricot".into())));
}

fn dropping_the_hosts_future_drops_the_plugins_future(via: Via) {
    let lookup = lookup(via);
    // Isolated or remote, the plugin's process hears of it a moment later (a `Cancel`
    // frame): `wait_for` waits for that note.
    let notes = Notes::default();
    start_then_drop_a_stall(&lookup, &notes);
    // tokio dropped the losing call: the plugin's future, and its guard, are gone.
    assert_eq!(notes.wait_for(2), ["started", "dropped"]);
    // The minimal executor's way: poll until it started, then drop.
    let notes = Notes::default();
    let mut call = lookup.stall(Box::new(notes.clone()));
    let mut cx = Context::from_waker(Waker::noop());
    wait_until("the stall to start", || {
        assert!(std::pin::Pin::new(&mut call).poll(&mut cx).is_pending());
        !notes.taken().is_empty()
    });
    assert_eq!(notes.taken(), ["started"]);
    drop(call);
    assert_eq!(notes.wait_for(2), ["started", "dropped"]);
    // The plugin goes on answering.
    assert_eq!(block_on(lookup.fetch("after", 1)), Ok(Some("after: fetched".to_owned())));
    assert_eq!(lookup.plain(2), Ok(4));
}

// ---------------------------------------------------------------------------------
// Panics and errors: a plugin's panic is `CallError::Panicked` with its message, and
// the plugin goes on; so is a host callback's panic, for the plugin's call.

fn a_panic_in_the_plugins_future_is_an_error(via: Via) {
    let lookup = lookup(via);
    let err = tokio().block_on(lookup.boom()).unwrap_err();
    let CallError::Panicked { message } = err else { panic!("{err:?}") };
    assert!(message.starts_with("the future blew up"), "{message}");
    // The plugin keeps working.
    assert_eq!(block_on(lookup.fetch("after", 1)), Ok(Some("after: fetched".to_owned())));
}

/// Once the plugin panics in every method (`Indexer::sabotage`), its objects' calls
/// are `Panicked` too, with the plugin's message; no host thread panics.
fn a_panicking_plugins_objects_fail_with_an_error(via: Via) {
    let plugin = indexer(via);
    plugin.index("apple avocado banana apricot", &Recorder::new(vec![]).1).unwrap();
    let cursor = plugin.open("a").unwrap();
    let shared = plugin.share(Arc::new(Recorder::new(vec![("prefix", "b")]).1)).unwrap();
    let later = block_on(plugin.open_later("ap")).unwrap();
    assert_eq!(cursor.next(), Ok(Some("apple".into())));
    plugin.sabotage().unwrap();
    let sabotaged = |what: &str, result: Result<(), CallError>| {
        let Err(CallError::Panicked { message }) = &result else { panic!("{what}: {result:?}") };
        assert!(message.contains("sabotaged: `"), "{what}: {message}");
    };
    sabotaged("Cursor::next of a Box", cursor.next().map(drop));
    sabotaged("Cursor::fork of a Box", cursor.fork().map(drop));
    sabotaged("Cursor::next of an Arc", shared.next().map(drop));
    sabotaged("Cursor::next of an async result", later.next().map(drop));
    sabotaged("Indexer::open", plugin.open("a").map(drop));
    sabotaged("Indexer::open_later", block_on(plugin.open_later("a")).map(drop));
    // Failed handles drop quietly.
    drop((cursor, shared, later));
}
