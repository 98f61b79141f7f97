//! `async_api::Lookup` with futures that really wait: each timer is a thread that
//! sleeps, then wakes the future through the host's waker (crossing back as an
//! `FfiWaker`). The plugin has no runtime of its own.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use async_api::{Lookup, Settings, Witness};

/// Ready `ms` milliseconds after it is first polled.
struct Sleep {
    ms: u64,
    fired: Option<Arc<AtomicBool>>,
}

fn sleep(ms: u64) -> Sleep {
    Sleep { ms, fired: None }
}

impl Future for Sleep {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match &self.fired {
            Some(fired) if fired.load(Ordering::Acquire) => Poll::Ready(()),
            Some(_) => Poll::Pending,
            None => {
                let fired = Arc::new(AtomicBool::new(false));
                let (flag, waker, ms) = (Arc::clone(&fired), cx.waker().clone(), self.ms);
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(ms));
                    flag.store(true, Ordering::Release);
                    waker.wake();
                });
                self.fired = Some(fired);
                Poll::Pending
            }
        }
    }
}

/// Tells the witness its future was dropped.
struct Dropped(Box<dyn Witness>);

impl Drop for Dropped {
    fn drop(&mut self) {
        self.0.note("dropped");
    }
}

#[derive(Default)]
struct Plugin;

#[tomada::implement]
impl Lookup for Plugin {
    async fn fetch(&self, key: &str, delay_ms: u64) -> Option<String> {
        sleep(delay_ms).await;
        (key != "missing").then(|| format!("{key}: fetched"))
    }

    async fn ask(&self, settings: &dyn Settings, key: &str, numbers: &[u32]) -> (String, u64) {
        sleep(1).await;
        let value = settings.get(key).unwrap_or_else(|| "unset".to_owned());
        (value, numbers.iter().map(|&n| u64::from(n)).sum())
    }

    async fn boom(&self) -> u32 {
        sleep(1).await;
        panic!("the future blew up");
    }

    async fn stall(&self, witness: Box<dyn Witness>) -> u32 {
        witness.note("started");
        let _dropped = Dropped(witness);
        std::future::pending::<()>().await;
        0
    }

    fn plain(&self, x: u32) -> u32 {
        x * 2
    }
}

tomada::export!(Plugin as Lookup);
