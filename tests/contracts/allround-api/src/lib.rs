//! A contract that crosses every type tomada supports, in both directions, to prove
//! the contract macro is general. Its plugin is `tests/plugins/allround`; the
//! expected answers are documented on each method and asserted by the tests.

#![allow(missing_docs)]

/// Every scalar type at once.
#[derive(tomada::Abi, Debug, Clone, PartialEq)]
pub struct Scalars {
    pub i8: i8,
    pub i16: i16,
    pub i32: i32,
    pub i64: i64,
    pub i128: i128,
    pub isize: isize,
    pub u8: u8,
    pub u16: u16,
    pub u32: u32,
    pub u64: u64,
    pub u128: u128,
    pub usize: usize,
    pub f32: f32,
    pub f64: f64,
    pub bool: bool,
    pub char: char,
}

/// A struct of owned and optional data, nesting another struct.
#[derive(tomada::Abi, Debug, Clone, PartialEq)]
pub struct Person {
    pub name: String,
    pub age: u8,
    pub nickname: Option<String>,
    pub photo: Vec<u8>,
    pub position: Point,
}

/// A tuple struct.
#[derive(tomada::Abi, Debug, Clone, Copy, PartialEq)]
pub struct Point(pub f64, pub f64);

/// An error that carries a message.
#[derive(tomada::Abi, Debug, Clone, PartialEq)]
pub struct Failure {
    pub code: u32,
    pub message: String,
}

/// A unit struct.
#[derive(tomada::Abi, Debug, Clone, Copy, PartialEq)]
pub struct Nothing;

#[tomada::contract(abi = 1)]
pub trait Allround {
    /// `a + b`, wrapping. The benchmark's trivial method.
    fn add(&self, a: u64, b: u64) -> u64;
    /// Every field moved one step: integers + 1 (wrapping), floats * 2, `!bool`,
    /// the next `char`.
    fn step(&self, s: Scalars) -> Scalars;
    /// The scalars as separate arguments; returns their sum as i128 (bool = 1,
    /// char as its code point, floats truncated).
    #[allow(clippy::too_many_arguments)]
    fn sum(
        &self,
        a: i8,
        b: i16,
        c: i32,
        d: i64,
        e: i128,
        f: isize,
        g: u8,
        h: u16,
        i: u32,
        j: u64,
        k: u128,
        l: usize,
        m: f32,
        n: f64,
        o: bool,
        p: char,
    ) -> i128;
    /// `!b`.
    fn not(&self, b: bool) -> bool;
    /// The next character (`z` → `{`).
    fn next_char(&self, c: char) -> char;
    /// `s` upper-cased.
    fn upper(&self, s: &str) -> String;
    /// `owned + borrowed`: an owned `String` crosses into the plugin.
    fn concat(&self, owned: String, borrowed: &str) -> String;
    /// The bytes reversed.
    fn reverse(&self, bytes: &[u8]) -> Vec<u8>;
    /// The length of an owned buffer that crossed into the plugin.
    fn len(&self, bytes: Vec<u8>) -> u64;
    /// `s` parsed as an `i64`, or `None`.
    fn parse(&self, s: &str) -> Option<i64>;
    /// `v`, or `"default"`.
    fn or_default(&self, v: Option<String>) -> String;
    /// `a / b`, or an error message for `b == 0`.
    fn divide(&self, a: i64, b: i64) -> Result<i64, String>;
    /// `Ok(n)` becomes `Ok(n.to_string())`; `Err(f)` comes back with `code + 1`.
    fn check(&self, r: Result<u32, Failure>) -> Result<String, Failure>;
    /// Ages the person by a year, upper-cases the name, appends 0xFF to the photo,
    /// sets a nickname if missing, and mirrors the position.
    fn birthday(&self, p: Person) -> Person;
    /// Nested options and results.
    fn nested(&self, v: Option<Result<Option<u8>, Nothing>>) -> Option<Result<Option<u8>, Nothing>>;
    /// No arguments, no result: counts calls.
    fn touch(&self);
    /// How many times `touch` was called.
    fn touches(&self) -> u64;
    /// Panics with the given message.
    fn fail(&self, message: &str) -> u8;
    /// An empty string and an empty buffer cross too.
    fn empty(&self, s: String, b: Vec<u8>) -> ();
}
