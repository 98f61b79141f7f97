//! A contract called through its generated vtable and client, in-process: the
//! same shims a plugin exports, without loading a library.

use std::ffi::c_void;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use tomada::{CallError, Contract};

#[derive(tomada::Abi, Debug, Clone, PartialEq)]
pub struct Record {
    pub id: u64,
    pub tags: Vec<u8>,
    pub note: Option<String>,
    pub wide: i128,
}

#[derive(tomada::Abi, Debug, Clone, PartialEq)]
pub struct Empty {}

/// Test contract.
#[tomada::contract(abi = 3)]
pub trait Store {
    fn put(&self, key: &str, value: Vec<u8>) -> Option<Vec<u8>>;
    fn get(&self, key: &str) -> Result<Vec<u8>, String>;
    fn record(&self, r: Record) -> Record;
    fn count(&self) -> u32;
    fn explode(&self, why: String) -> Empty;
    fn glyph(&self, c: char, upper: bool) -> char;
}

#[derive(Default)]
struct Memory {
    map: Mutex<Vec<(String, Vec<u8>)>>,
    calls: AtomicU32,
}

impl Store for Memory {
    fn put(&self, key: &str, value: Vec<u8>) -> Option<Vec<u8>> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let mut map = self.map.lock().unwrap();
        match map.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => Some(std::mem::replace(v, value)),
            None => {
                map.push((key.to_owned(), value));
                None
            }
        }
    }
    fn get(&self, key: &str) -> Result<Vec<u8>, String> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let map = self.map.lock().unwrap();
        map.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()).ok_or_else(|| format!("no key `{key}`"))
    }
    fn record(&self, mut r: Record) -> Record {
        r.id += 1;
        r.tags.push(b'!');
        r.note = r.note.map(|n| n + "?");
        r.wide = -r.wide;
        r
    }
    fn count(&self) -> u32 {
        self.calls.load(Ordering::Relaxed)
    }
    fn explode(&self, why: String) -> Empty {
        panic!("exploded: {why}")
    }
    fn glyph(&self, c: char, upper: bool) -> char {
        if upper { c.to_ascii_uppercase() } else { c }
    }
}

/// What `tomada::export!` and `tomada_host::load` do, minus the library.
struct Local {
    client: <dyn Store as Contract>::Client,
    this: *const c_void,
}

static VTABLE: StoreVTable = <dyn Store>::__tomada_vtable::<Memory>();

impl Local {
    fn new() -> Self {
        let this = Box::into_raw(Box::new(Memory::default())).cast::<c_void>().cast_const();
        // SAFETY: `VTABLE` is `Store`'s vtable for `Memory`, `this` a live `Memory`
        // that outlives the client (freed in `drop`).
        let client =
            unsafe { <dyn Store as Contract>::__client(&VTABLE as *const StoreVTable as *const c_void, this, 6, 0) };
        Local { client, this }
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        // SAFETY: made by `Box::into_raw` in `new`, freed once.
        drop(unsafe { Box::from_raw(self.this.cast::<Memory>().cast_mut()) });
    }
}

#[test]
fn calls_cross_the_vtable_with_every_kind_of_value() {
    let local = Local::new();
    let store = &local.client;
    assert_eq!(store.put("a", b"1".to_vec()), Ok(None));
    assert_eq!(store.put("a", b"2".to_vec()), Ok(Some(b"1".to_vec())));
    assert_eq!(store.get("a"), Ok(Ok(b"2".to_vec())));
    assert_eq!(store.get("zz"), Ok(Err("no key `zz`".to_owned())));
    let r = Record { id: 41, tags: vec![1, 2], note: Some("hm".into()), wide: i128::MIN + 1 };
    assert_eq!(
        store.record(r),
        Ok(Record { id: 42, tags: vec![1, 2, b'!'], note: Some("hm?".into()), wide: i128::MAX })
    );
    assert_eq!(store.glyph('ç', true), Ok('ç'));
    assert_eq!(store.glyph('q', true), Ok('Q'));
    assert_eq!(store.count(), Ok(4));
}

#[test]
fn a_panic_comes_back_as_an_error_and_the_instance_keeps_working() {
    tomada::call::__install_panic_hook();
    let local = Local::new();
    let err = local.client.explode("on purpose".into()).unwrap_err();
    let CallError::Panicked { message } = &err else { panic!("not a panic error: {err:?}") };
    assert!(message.starts_with("exploded: on purpose (at "), "{message}");
    assert!(err.to_string().starts_with("the plugin panicked: exploded: on purpose"), "{err}");
    assert_eq!(local.client.put("k", vec![]), Ok(None));
}

#[test]
fn the_client_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<<dyn Store as Contract>::Client>();
    let local = Local::new();
    std::thread::scope(|s| {
        for t in 0..4 {
            let client = &local.client;
            s.spawn(move || {
                for i in 0..50 {
                    client.put(&format!("{t}-{i}"), vec![t as u8]).unwrap();
                }
            });
        }
    });
    assert_eq!(local.client.count(), Ok(200));
}

#[allow(dead_code)] // exists for its vtable
mod v10 {
    #[tomada::contract(abi = 1, name = "evolving::Api")]
    pub trait Api {
        fn hello(&self) -> String;
    }
}

#[allow(dead_code)] // exists for its client
mod v11 {
    #[tomada::contract(abi = 1, name = "evolving::Api")]
    pub trait Api {
        fn hello(&self) -> String;
        /// Added in 1.1.
        #[tomada(since = 1)]
        fn bye(&self, name: &str) -> String;
    }
}

struct Old;

impl v10::Api for Old {
    fn hello(&self) -> String {
        "hello from 1.0".into()
    }
}

static OLD_VTABLE: v10::ApiVTable = <dyn v10::Api>::__tomada_vtable::<Old>();

#[test]
fn a_newer_host_calls_an_older_plugin() {
    assert_eq!(<dyn v11::Api as Contract>::MINOR, 1);
    assert_eq!(<dyn v10::Api as Contract>::MINOR, 0);
    // The 1.0 plugin's vtable has one entry; the 1.1 client knows two.
    assert_eq!(std::mem::size_of::<v10::ApiVTable>(), std::mem::size_of::<usize>());
    let this = &Old as *const Old as *const c_void;
    // SAFETY: a vtable with the contract's first method, as `provided = 1` says, and
    // a live `Old` that outlives the client.
    let client = unsafe { <dyn v11::Api as Contract>::__client(&OLD_VTABLE as *const _ as *const c_void, this, 1, 0) };
    assert_eq!(client.hello(), Ok("hello from 1.0".into()));
    let err = client.bye("x").unwrap_err();
    assert_eq!(err, CallError::NotProvided { method: "bye", added_in: "1.1".into(), plugin_version: "1.0".into() });
    assert_eq!(
        err.to_string(),
        "`bye` is not provided by this plugin (built against contract 1.0; `bye` was added in 1.1); rebuild the plugin against the newer contract"
    );
}

#[test]
fn the_description_is_readable() {
    let d = tomada::Interface::from(&<dyn v11::Api as Contract>::DESCRIPTION);
    assert_eq!(d.name, "evolving::Api");
    assert_eq!(d.version(), "1.1");
    let methods: Vec<String> = d.methods.iter().map(ToString::to_string).collect();
    assert_eq!(methods, ["fn hello(&self) -> String", "fn bye(&self, &str) -> String  [since minor 1]"]);
    let store = tomada::Interface::from(&<dyn Store as Contract>::DESCRIPTION);
    assert_eq!(store.methods[0].to_string(), "fn put(&self, &str, Vec<u8>) -> Option<Vec<u8>>");
    let record = &store.methods[2].args[0];
    let fields: Vec<_> = record.fields.iter().map(|f| format!("{}: {}", f.name, f.ty)).collect();
    assert_eq!(fields, ["id: u64", "tags: Vec<u8>", "note: Option<String>", "wide: i128"]);
}

/// The isolated path without a process: the remote vtable encodes each call, a
/// loopback channel hands the bytes straight to the plugin side's dispatch function,
/// which decodes them and calls the instance. Miri runs this too.
mod remote {
    use std::sync::Arc;

    use tomada::ffi::{RSlice, RVec, Status};
    use tomada::remote::{Channel, RemoteObject};

    use super::*;

    struct Loopback {
        memory: Memory,
    }

    impl Channel for Loopback {
        fn call(&self, method: u32, args: Vec<u8>) -> Result<Vec<u8>, (Status, String)> {
            let mut out = std::mem::MaybeUninit::<RVec>::uninit();
            let mut panic = std::mem::MaybeUninit::<RVec>::uninit();
            let this = &self.memory as *const Memory as *const c_void;
            // SAFETY: the dispatch function of `Store` for `Memory`, with a live
            // `Memory`, live argument bytes and writable out-pointers.
            let status = unsafe {
                <dyn Store>::__tomada_dispatch::<Memory>(
                    this,
                    method,
                    RSlice::new(&args),
                    out.as_mut_ptr(),
                    panic.as_mut_ptr(),
                )
            };
            if status == Status::OK {
                // SAFETY: written on OK.
                Ok(unsafe { out.assume_init() }.into_vec())
            } else {
                // SAFETY: written for every failed status.
                let message = unsafe { panic.assume_init() }.into_vec();
                Err((status, String::from_utf8(message).unwrap()))
            }
        }
    }

    #[test]
    fn every_kind_of_value_crosses_the_byte_level_path() {
        tomada::call::__install_panic_hook();
        let remote = Box::new(RemoteObject { channel: Arc::new(Loopback { memory: Memory::default() }) });
        // SAFETY: the remote vtable with its `RemoteObject`, which outlives the client.
        let store = unsafe {
            <dyn Store as Contract>::__client(
                <dyn Store as Contract>::REMOTE_VTABLE as *const StoreVTable as *const c_void,
                &*remote as *const RemoteObject as *const c_void,
                6,
                0,
            )
        };
        assert_eq!(store.put("a", b"1".to_vec()), Ok(None));
        assert_eq!(store.put("a", b"2".to_vec()), Ok(Some(b"1".to_vec())));
        assert_eq!(store.get("a"), Ok(Ok(b"2".to_vec())));
        assert_eq!(store.get("zz"), Ok(Err("no key `zz`".to_owned())));
        let r = Record { id: 1, tags: vec![9], note: None, wide: -5 };
        assert_eq!(store.record(r), Ok(Record { id: 2, tags: vec![9, b'!'], note: None, wide: 5 }));
        assert_eq!(store.glyph('ã', false), Ok('ã'));
        assert_eq!(store.count(), Ok(4));
        let err = store.explode("far away".into()).unwrap_err();
        assert!(
            matches!(&err, CallError::Panicked { message } if message.starts_with("exploded: far away (at ")),
            "{err:?}"
        );
    }

    #[test]
    fn garbage_arguments_are_a_channel_error() {
        let memory = Memory::default();
        let mut out = std::mem::MaybeUninit::<RVec>::uninit();
        let mut panic = std::mem::MaybeUninit::<RVec>::uninit();
        // SAFETY: as above; the argument bytes are not a valid encoding.
        let status = unsafe {
            <dyn Store>::__tomada_dispatch::<Memory>(
                &memory as *const Memory as *const c_void,
                0,
                RSlice::new(&[0xff, 0xff, 0xff]),
                out.as_mut_ptr(),
                panic.as_mut_ptr(),
            )
        };
        assert_eq!(status, Status::CHANNEL);
        // SAFETY: written for a failed status.
        let message = String::from_utf8(unsafe { panic.assume_init() }.into_vec()).unwrap();
        assert!(message.starts_with("malformed arguments"), "{message}");
        let mut panic = std::mem::MaybeUninit::<RVec>::uninit();
        // SAFETY: as above, with a method number the contract does not have.
        let status = unsafe {
            <dyn Store>::__tomada_dispatch::<Memory>(
                &memory as *const Memory as *const c_void,
                99,
                RSlice::new(&[]),
                out.as_mut_ptr(),
                panic.as_mut_ptr(),
            )
        };
        assert_eq!(status, Status::CHANNEL);
        // SAFETY: written for a failed status.
        drop(unsafe { panic.assume_init() });
    }
}
