//! A plugin that depends on its contract crate only (`tests/plugins/contract-only`,
//! whose `Cargo.toml` names `solo-api` and nothing else), `async fn`s included: it
//! reaches `#[tomada::implement]` and `export!` through the contract's `pub use tomada;`.
//! Before `#[implement]` stopped naming `::tomada`, this fixture did not compile
//! ("cannot find `tomada` in the crate root"). Loaded and called in both modes.

use std::path::Path;

use solo_api::Words;
use tomada_host::isolate::Mode;
use tomada_test_support::cdylib;

/// The plugin's `[dependencies]`: its contract crate and nothing else.
#[test]
fn the_fixture_depends_on_its_contract_crate_only() {
    let manifest = tomada_test_support::workspace_root().join("tests/plugins/contract-only/Cargo.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let dependencies: Vec<&str> = text
        .split("\n[")
        .filter(|section| section.starts_with("dependencies]"))
        .flat_map(|section| section.lines().skip(1))
        .filter(|line| !line.trim().is_empty() && !line.trim_start().starts_with('#'))
        .map(|line| line.split(['=', ' ']).next().unwrap())
        .collect();
    assert_eq!(dependencies, ["solo-api"], "{}", Path::new(&manifest).display());
}

#[test]
fn a_plugin_with_only_its_contract_crate_answers_async_calls_in_both_modes() {
    let path = cdylib("contract-only");
    #[cfg_attr(not(unix), allow(unused_mut))]
    let mut modes = vec![("in-process", Mode::InProcess)];
    #[cfg(unix)]
    modes.push(("isolated", Mode::Isolated(crate::isolate::isolation())));
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    for (mode, how) in modes {
        let words = tomada_host::load_with::<dyn Words>(&path, &how).unwrap();
        assert_eq!(words.info().name, "contract-only", "{mode}");
        assert_eq!(runtime.block_on(words.word("pt")), Ok(Some("tomada".to_owned())), "{mode}");
        assert_eq!(runtime.block_on(words.word("xx")), Ok(None), "{mode}");
        let joined = runtime.block_on(words.join(&["a".to_owned(), "b".to_owned()], "+"));
        assert_eq!(joined, Ok("a+b".to_owned()), "{mode}");
        assert_eq!(words.count(), Ok(2), "{mode}");
    }
}
