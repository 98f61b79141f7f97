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
        map.iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| format!("no key `{key}`"))
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
        let this = Box::into_raw(Box::new(Memory::default()))
            .cast::<c_void>()
            .cast_const();
        // SAFETY: `VTABLE` is `Store`'s vtable for `Memory`, `this` a live `Memory`
        // that outlives the client (freed in `drop`).
        let client = unsafe {
            <dyn Store as Contract>::__client(&VTABLE as *const StoreVTable as *const c_void, this)
        };
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
    let r = Record {
        id: 41,
        tags: vec![1, 2],
        note: Some("hm".into()),
        wide: i128::MIN + 1,
    };
    assert_eq!(
        store.record(r),
        Ok(Record {
            id: 42,
            tags: vec![1, 2, b'!'],
            note: Some("hm?".into()),
            wide: i128::MAX
        })
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
    let CallError::Panicked { message } = &err else {
        panic!("not a panic error: {err:?}")
    };
    assert!(
        message.starts_with("exploded: on purpose (at "),
        "{message}"
    );
    assert!(
        err.to_string()
            .starts_with("the plugin panicked: exploded: on purpose"),
        "{err}"
    );
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
