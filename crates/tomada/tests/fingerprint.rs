//! The layout fingerprint changes for every change that breaks callers, and only
//! for those.

#![allow(dead_code)] // the contracts exist for their fingerprints

use tomada::Contract;

#[derive(tomada::Abi)]
pub struct Point {
    pub x: i32,
    pub y: i32,
}

mod base {
    #[tomada::contract(abi = 1, name = "t::Api")]
    pub trait Api {
        fn a(&self, x: u32, s: &str) -> String;
        fn b(&self, v: Option<u8>) -> Result<u8, String>;
        fn c(&self, p: super::Point);
    }
}

/// The same contract with other argument names and docs: callers do not break.
mod same {
    #[tomada::contract(abi = 1, name = "t::Api")]
    pub trait Api {
        /// Documented now.
        fn a(&self, number: u32, text: &str) -> String;
        fn b(&self, maybe: Option<u8>) -> Result<u8, String>;
        fn c(&self, point: super::Point);
    }
}

mod added {
    #[tomada::contract(abi = 1, name = "t::Api")]
    pub trait Api {
        fn a(&self, x: u32, s: &str) -> String;
        fn b(&self, v: Option<u8>) -> Result<u8, String>;
        fn c(&self, p: super::Point);
        fn d(&self);
    }
}

mod removed {
    #[tomada::contract(abi = 1, name = "t::Api")]
    pub trait Api {
        fn a(&self, x: u32, s: &str) -> String;
        fn b(&self, v: Option<u8>) -> Result<u8, String>;
    }
}

mod reordered {
    #[tomada::contract(abi = 1, name = "t::Api")]
    pub trait Api {
        fn b(&self, v: Option<u8>) -> Result<u8, String>;
        fn a(&self, x: u32, s: &str) -> String;
        fn c(&self, p: super::Point);
    }
}

mod renamed {
    #[tomada::contract(abi = 1, name = "t::Api")]
    pub trait Api {
        fn a2(&self, x: u32, s: &str) -> String;
        fn b(&self, v: Option<u8>) -> Result<u8, String>;
        fn c(&self, p: super::Point);
    }
}

mod argument_type {
    #[tomada::contract(abi = 1, name = "t::Api")]
    pub trait Api {
        fn a(&self, x: u64, s: &str) -> String;
        fn b(&self, v: Option<u8>) -> Result<u8, String>;
        fn c(&self, p: super::Point);
    }
}

mod borrowed_to_owned {
    #[tomada::contract(abi = 1, name = "t::Api")]
    pub trait Api {
        fn a(&self, x: u32, s: String) -> String;
        fn b(&self, v: Option<u8>) -> Result<u8, String>;
        fn c(&self, p: super::Point);
    }
}

mod argument_added {
    #[tomada::contract(abi = 1, name = "t::Api")]
    pub trait Api {
        fn a(&self, x: u32, s: &str, extra: bool) -> String;
        fn b(&self, v: Option<u8>) -> Result<u8, String>;
        fn c(&self, p: super::Point);
    }
}

mod arguments_swapped {
    #[tomada::contract(abi = 1, name = "t::Api")]
    pub trait Api {
        fn a(&self, s: &str, x: u32) -> String;
        fn b(&self, v: Option<u8>) -> Result<u8, String>;
        fn c(&self, p: super::Point);
    }
}

mod result_type {
    #[tomada::contract(abi = 1, name = "t::Api")]
    pub trait Api {
        fn a(&self, x: u32, s: &str) -> Vec<u8>;
        fn b(&self, v: Option<u8>) -> Result<u8, String>;
        fn c(&self, p: super::Point);
    }
}

mod nested_type {
    #[tomada::contract(abi = 1, name = "t::Api")]
    pub trait Api {
        fn a(&self, x: u32, s: &str) -> String;
        fn b(&self, v: Option<u8>) -> Result<u16, String>;
        fn c(&self, p: super::Point);
    }
}

mod field_added {
    #[derive(tomada::Abi)]
    pub struct Point {
        pub x: i32,
        pub y: i32,
        pub z: i32,
    }
    #[tomada::contract(abi = 1, name = "t::Api")]
    pub trait Api {
        fn a(&self, x: u32, s: &str) -> String;
        fn b(&self, v: Option<u8>) -> Result<u8, String>;
        fn c(&self, p: Point);
    }
}

mod field_type {
    #[derive(tomada::Abi)]
    pub struct Point {
        pub x: i64,
        pub y: i32,
    }
    #[tomada::contract(abi = 1, name = "t::Api")]
    pub trait Api {
        fn a(&self, x: u32, s: &str) -> String;
        fn b(&self, v: Option<u8>) -> Result<u8, String>;
        fn c(&self, p: Point);
    }
}

mod field_renamed {
    #[derive(tomada::Abi)]
    pub struct Point {
        pub x: i32,
        pub why: i32,
    }
    #[tomada::contract(abi = 1, name = "t::Api")]
    pub trait Api {
        fn a(&self, x: u32, s: &str) -> String;
        fn b(&self, v: Option<u8>) -> Result<u8, String>;
        fn c(&self, p: Point);
    }
}

mod fields_reordered {
    #[derive(tomada::Abi)]
    pub struct Point {
        pub y: i32,
        pub x: i32,
    }
    #[tomada::contract(abi = 1, name = "t::Api")]
    pub trait Api {
        fn a(&self, x: u32, s: &str) -> String;
        fn b(&self, v: Option<u8>) -> Result<u8, String>;
        fn c(&self, p: Point);
    }
}

fn fp<C: ?Sized + Contract>() -> u64 {
    C::FINGERPRINT
}

#[test]
fn unchanged_contract_keeps_its_fingerprint() {
    assert_eq!(fp::<dyn base::Api>(), fp::<dyn same::Api>());
}

#[test]
fn every_breaking_change_changes_the_fingerprint() {
    let base = fp::<dyn base::Api>();
    let changed = [
        ("method added", fp::<dyn added::Api>()),
        ("method removed", fp::<dyn removed::Api>()),
        ("methods reordered", fp::<dyn reordered::Api>()),
        ("method renamed", fp::<dyn renamed::Api>()),
        ("argument type changed", fp::<dyn argument_type::Api>()),
        ("&str became String", fp::<dyn borrowed_to_owned::Api>()),
        ("argument added", fp::<dyn argument_added::Api>()),
        ("arguments swapped", fp::<dyn arguments_swapped::Api>()),
        ("result type changed", fp::<dyn result_type::Api>()),
        ("type inside Result changed", fp::<dyn nested_type::Api>()),
        ("struct field added", fp::<dyn field_added::Api>()),
        ("struct field retyped", fp::<dyn field_type::Api>()),
        ("struct field renamed", fp::<dyn field_renamed::Api>()),
        ("struct fields reordered", fp::<dyn fields_reordered::Api>()),
    ];
    for (what, value) in changed {
        assert_ne!(value, base, "{what} kept the fingerprint");
    }
    // And no two changes collide with each other either.
    for (i, (a, x)) in changed.iter().enumerate() {
        for (b, y) in &changed[i + 1..] {
            assert_ne!(x, y, "{a} and {b} share a fingerprint");
        }
    }
}

#[test]
fn name_and_abi_are_recorded_apart_from_the_fingerprint() {
    mod v2 {
        #[tomada::contract(abi = 2, name = "t::Api")]
        pub trait Api {
            fn a(&self, x: u32, s: &str) -> String;
            fn b(&self, v: Option<u8>) -> Result<u8, String>;
            fn c(&self, p: super::Point);
        }
    }
    assert_eq!(<dyn v2::Api as Contract>::ABI, 2);
    assert_eq!(<dyn base::Api as Contract>::ABI, 1);
    assert_eq!(<dyn v2::Api as Contract>::NAME, "t::Api");
    assert_eq!(fp::<dyn v2::Api>(), fp::<dyn base::Api>());
}

#[test]
fn default_contract_name_is_the_trait_path() {
    mod api {
        #[tomada::contract(abi = 1)]
        pub trait Thing {
            fn f(&self);
        }
    }
    assert!(<dyn api::Thing as Contract>::NAME.ends_with("::api::Thing"), "{}", <dyn api::Thing as Contract>::NAME);
}
