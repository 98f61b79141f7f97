//! The plugin of the `host-services` example: a notebook. It calls the host back
//! during a call, keeps a host service for later calls, hands out cursors, and logs
//! with the `log` crate as any library does (the records reach the host's logger).

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use host_services_api::{Cursor, Host, Notebook, tomada};

#[derive(Default)]
struct Notes {
    notes: Mutex<Vec<String>>,
    /// The host service given to `attach`; dropped with the plugin.
    host: Mutex<Option<Box<dyn Host>>>,
}

/// A cursor: plain Rust data owned by the plugin, used by the host.
struct Matching {
    notes: Vec<String>,
    at: AtomicUsize,
}

impl Cursor for Matching {
    fn next(&self) -> Option<String> {
        self.notes.get(self.at.fetch_add(1, Ordering::Relaxed)).cloned()
    }
}

impl Notebook for Notes {
    fn add(&self, text: &str, host: &dyn Host) -> u32 {
        // A call back into the host, in the middle of the host's call.
        let note = match host.config("style").as_deref() {
            Some("shout") => text.to_uppercase(),
            _ => text.to_owned(),
        };
        let mut notes = self.notes.lock().unwrap();
        notes.push(note);
        log::info!("note {} added", notes.len());
        notes.len() as u32
    }

    fn attach(&self, host: Box<dyn Host>) {
        log::debug!("a host service attached");
        *self.host.lock().unwrap() = Some(host);
    }

    fn publish_all(&self) -> u32 {
        let host = self.host.lock().unwrap();
        let Some(host) = host.as_ref() else {
            log::warn!("nothing to publish to: attach a host first");
            return 0;
        };
        let notes = self.notes.lock().unwrap();
        for note in notes.iter() {
            host.publish(note);
        }
        notes.len() as u32
    }

    fn notes(&self, prefix: &str) -> Box<dyn Cursor> {
        let notes = self.notes.lock().unwrap().iter().filter(|n| n.starts_with(prefix)).cloned().collect();
        Box::new(Matching { notes, at: AtomicUsize::new(0) })
    }
}

tomada::export!(Notes as Notebook);
