//! Anything that cannot cross the boundary is a compile error naming the type and
//! what to use instead. The expected messages are in `tests/ui/*.stderr`
//! (regenerate with `TRYBUILD=overwrite` after checking them).

#[test]
#[cfg_attr(miri, ignore = "runs rustc")]
fn unsupported_contracts_do_not_compile() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
