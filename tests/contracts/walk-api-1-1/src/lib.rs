//! `walk::Walk` 1.1: `Step` gains a field, in a contract object's method.

#![allow(missing_docs)]

#[derive(tomada::Abi, Debug, Clone, PartialEq)]
pub struct Step {
    pub n: u64,
    #[tomada(since = 1, default = "unnamed".to_owned())]
    pub name: String,
}

#[tomada::contract(abi = 1, name = "walk::Visitor")]
pub trait Visitor {
    fn step(&self, step: Step) -> Step;
}

#[tomada::contract(abi = 1, name = "walk::Walk")]
pub trait Walk {
    /// Calls `visitor` with steps 1 and 2; returns what it answered, in `Debug` form.
    fn walk(&self, visitor: &dyn Visitor) -> String;
}
