//! One plugin instance called from several threads at once.

use std::sync::Arc;

use allround_api::Allround;
use pluginapi::Greeter;
use tomada_test_support::cdylib;

#[test]
fn calls_from_many_threads_at_once() {
    let plugin = Arc::new(tomada_host::load::<dyn Allround>(cdylib("allround")).unwrap());
    const THREADS: u64 = 8;
    const CALLS: u64 = 500;
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let plugin = Arc::clone(&plugin);
            std::thread::spawn(move || {
                for i in 0..CALLS {
                    plugin.touch().unwrap();
                    assert_eq!(plugin.add(t, i).unwrap(), t + i);
                    assert_eq!(plugin.upper(&format!("t{t}-{i}")).unwrap(), format!("T{t}-{i}"));
                    assert_eq!(plugin.reverse(&[t as u8, i as u8]).unwrap(), vec![i as u8, t as u8]);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(plugin.touches().unwrap(), THREADS * CALLS);
}

#[test]
fn a_plugin_moves_to_another_thread() {
    let plugin = tomada_host::load::<dyn Greeter>(cdylib("greeter")).unwrap();
    let greeting = std::thread::spawn(move || plugin.greet("thread").unwrap()).join().unwrap();
    assert_eq!(greeting, "Olá, thread 👋");
}
