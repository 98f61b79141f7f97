//! Every supported type crosses a real library boundary, in both directions.

use std::sync::OnceLock;

use allround_api::{Allround, Failure, Nothing, Person, Point, Scalars};
use tomada_host::{CallError, Plugin};
use tomada_test_support::cdylib;

fn plugin() -> &'static Plugin<dyn Allround> {
    static PLUGIN: OnceLock<Plugin<dyn Allround>> = OnceLock::new();
    PLUGIN.get_or_init(|| tomada_host::load::<dyn Allround>(cdylib("allround")).unwrap())
}

#[test]
fn integers_of_every_width() {
    let p = plugin();
    assert_eq!(p.add(u64::MAX, 2).unwrap(), 1);
    let s = Scalars {
        i8: i8::MAX,
        i16: -2,
        i32: i32::MIN,
        i64: 1 << 40,
        i128: i128::MAX - 1,
        isize: -1,
        u8: u8::MAX,
        u16: 65534,
        u32: 7,
        u64: u64::MAX,
        u128: u128::MAX,
        usize: 9,
        f32: 1.5,
        f64: -0.25,
        bool: true,
        char: 'a',
    };
    let stepped = p.step(s).unwrap();
    assert_eq!(
        stepped,
        Scalars {
            i8: i8::MIN,
            i16: -1,
            i32: i32::MIN + 1,
            i64: (1 << 40) + 1,
            i128: i128::MAX,
            isize: 0,
            u8: 0,
            u16: 65535,
            u32: 8,
            u64: 0,
            u128: 0,
            usize: 10,
            f32: 3.0,
            f64: -0.5,
            bool: false,
            char: 'b',
        }
    );
    let sum = p.sum(-1, -2, -3, -4, -(1i128 << 100), -6, 1, 2, 3, 4, 1u128 << 100, 6, 7.9, 8.9, true, 'A').unwrap();
    // The ±2^100 cancel, the small ints cancel to 0, then 7 (7.9) + 8 (8.9) + 1 (true) + 65 ('A').
    assert_eq!(sum, 81);
}

#[test]
fn bool_and_char() {
    let p = plugin();
    assert!(!p.not(true).unwrap());
    assert!(p.not(false).unwrap());
    assert_eq!(p.next_char('z').unwrap(), '{');
    assert_eq!(p.next_char('🙂').unwrap(), '🙃');
}

#[test]
fn strings_and_bytes() {
    let p = plugin();
    assert_eq!(p.upper("olá, mundo").unwrap(), "OLÁ, MUNDO");
    assert_eq!(p.upper("").unwrap(), "");
    assert_eq!(p.concat("dono ".to_owned(), "emprestado").unwrap(), "dono emprestado");
    assert_eq!(p.reverse(&[1, 2, 3]).unwrap(), vec![3, 2, 1]);
    assert_eq!(p.reverse(&[]).unwrap(), Vec::<u8>::new());
    let big = vec![7u8; 1 << 20];
    assert_eq!(p.len(big).unwrap(), 1 << 20);
    p.empty(String::new(), Vec::new()).unwrap();
}

#[test]
fn options_and_results() {
    let p = plugin();
    assert_eq!(p.parse("-42").unwrap(), Some(-42));
    assert_eq!(p.parse("x").unwrap(), None);
    assert_eq!(p.or_default(Some("valor".into())).unwrap(), "valor");
    assert_eq!(p.or_default(None).unwrap(), "default");
    assert_eq!(p.divide(7, 2).unwrap(), Ok(3));
    assert_eq!(p.divide(7, 0).unwrap(), Err("cannot divide 7 by 0".to_owned()));
    assert_eq!(p.check(Ok(5)).unwrap(), Ok("5".to_owned()));
    assert_eq!(
        p.check(Err(Failure { code: 1, message: "falhou".into() })).unwrap(),
        Err(Failure { code: 2, message: "falhou".into() })
    );
    for v in [None, Some(Err(Nothing)), Some(Ok(None)), Some(Ok(Some(21)))] {
        let expected = v.map(|r| r.map(|o| o.map(|n: u8| n * 2)));
        assert_eq!(p.nested(v).unwrap(), expected);
    }
}

#[test]
fn structs() {
    let p = plugin();
    let person = Person { name: "ana".into(), age: 30, nickname: None, photo: vec![1, 2], position: Point(1.0, -2.0) };
    assert_eq!(
        p.birthday(person).unwrap(),
        Person {
            name: "ANA".into(),
            age: 31,
            nickname: Some("aniversariante".into()),
            photo: vec![1, 2, 0xFF],
            position: Point(-1.0, 2.0),
        }
    );
}

#[test]
fn unit_methods_and_state() {
    let p = tomada_host::load::<dyn Allround>(cdylib("allround")).unwrap();
    let before = p.touches().unwrap();
    p.touch().unwrap();
    p.touch().unwrap();
    assert_eq!(p.touches().unwrap(), before + 2);
}

#[test]
fn panics_carry_their_message() {
    let err = plugin().fail("falha de propósito").unwrap_err();
    assert!(
        matches!(&err, CallError::Panicked { message } if message.starts_with("falha de propósito (at ")),
        "{err:?}"
    );
}
