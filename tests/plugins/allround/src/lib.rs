//! Fixture: implements `allround-api` as its methods document.

use std::sync::atomic::{AtomicU64, Ordering};

use allround_api::{Allround, Failure, Nothing, Person, Point, Scalars};

#[derive(Default)]
struct Impl {
    touches: AtomicU64,
}

impl Allround for Impl {
    fn add(&self, a: u64, b: u64) -> u64 {
        a.wrapping_add(b)
    }
    fn step(&self, s: Scalars) -> Scalars {
        Scalars {
            i8: s.i8.wrapping_add(1),
            i16: s.i16.wrapping_add(1),
            i32: s.i32.wrapping_add(1),
            i64: s.i64.wrapping_add(1),
            i128: s.i128.wrapping_add(1),
            isize: s.isize.wrapping_add(1),
            u8: s.u8.wrapping_add(1),
            u16: s.u16.wrapping_add(1),
            u32: s.u32.wrapping_add(1),
            u64: s.u64.wrapping_add(1),
            u128: s.u128.wrapping_add(1),
            usize: s.usize.wrapping_add(1),
            f32: s.f32 * 2.0,
            f64: s.f64 * 2.0,
            bool: !s.bool,
            char: char::from_u32(s.char as u32 + 1).unwrap_or('?'),
        }
    }
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
    ) -> i128 {
        a as i128
            + b as i128
            + c as i128
            + d as i128
            + e
            + f as i128
            + g as i128
            + h as i128
            + i as i128
            + j as i128
            + k as i128
            + l as i128
            + m as i128
            + n as i128
            + o as i128
            + p as i128
    }
    fn not(&self, b: bool) -> bool {
        !b
    }
    fn next_char(&self, c: char) -> char {
        char::from_u32(c as u32 + 1).unwrap_or('?')
    }
    fn upper(&self, s: &str) -> String {
        s.to_uppercase()
    }
    fn concat(&self, owned: String, borrowed: &str) -> String {
        owned + borrowed
    }
    fn reverse(&self, bytes: &[u8]) -> Vec<u8> {
        bytes.iter().rev().copied().collect()
    }
    fn len(&self, bytes: Vec<u8>) -> u64 {
        bytes.len() as u64
    }
    fn parse(&self, s: &str) -> Option<i64> {
        s.parse().ok()
    }
    fn or_default(&self, v: Option<String>) -> String {
        v.unwrap_or_else(|| "default".into())
    }
    fn divide(&self, a: i64, b: i64) -> Result<i64, String> {
        a.checked_div(b).ok_or_else(|| format!("cannot divide {a} by {b}"))
    }
    fn check(&self, r: Result<u32, Failure>) -> Result<String, Failure> {
        match r {
            Ok(n) => Ok(n.to_string()),
            Err(f) => Err(Failure { code: f.code + 1, message: f.message }),
        }
    }
    fn birthday(&self, mut p: Person) -> Person {
        p.age += 1;
        p.name = p.name.to_uppercase();
        p.photo.push(0xFF);
        p.nickname.get_or_insert_with(|| "aniversariante".into());
        p.position = Point(-p.position.0, -p.position.1);
        p
    }
    fn nested(&self, v: Option<Result<Option<u8>, Nothing>>) -> Option<Result<Option<u8>, Nothing>> {
        v.map(|r| r.map(|o| o.map(|n| n.wrapping_mul(2))))
    }
    fn touch(&self) {
        self.touches.fetch_add(1, Ordering::Relaxed);
    }
    fn touches(&self) -> u64 {
        self.touches.load(Ordering::Relaxed)
    }
    fn fail(&self, message: &str) -> u8 {
        panic!("{message}")
    }
    fn empty(&self, s: String, b: Vec<u8>) {
        assert!(s.is_empty() && b.is_empty());
    }
}

tomada::export!(Impl as allround_api::Allround);

/// The floor for any cross-library call, for the benchmark: a bare C function.
#[unsafe(no_mangle)]
pub extern "C" fn allround_bare_add(a: u64, b: u64) -> u64 {
    a.wrapping_add(b)
}
