//! `walk::Walk` 1.0: structs and an open enum crossing inside contract objects'
//! methods: a callback the host lends (`&dyn Visitor`) or gives away (`Box<dyn
//! Visitor>`), and an object the plugin makes (`Box<dyn Trail>`), whose methods take
//! and return them and call back.

#![allow(missing_docs)]

#[derive(tomada::Abi, Debug, Clone, PartialEq)]
pub struct Step {
    pub n: u64,
}

#[derive(tomada::Abi, Debug, Clone, PartialEq)]
pub enum Mood {
    Calm,
    #[tomada(other)]
    Unknown,
}

#[tomada::contract(abi = 1, name = "walk::Visitor")]
pub trait Visitor {
    fn step(&self, step: Step) -> Step;
}

#[tomada::contract(abi = 1, name = "walk::Trail")]
pub trait Trail {
    /// `step` moved on by where the trail starts.
    fn next(&self, step: Step) -> Step;
    fn mood(&self) -> Mood;
    /// Calls `visitor` with the trail's first step; returns what it answered.
    fn visit(&self, visitor: &dyn Visitor) -> Step;
    /// As `next`, later.
    async fn later(&self, step: Step) -> Step;
}

#[tomada::contract(abi = 1, name = "walk::Walk")]
pub trait Walk {
    /// Calls `visitor` with steps 1 and 2; returns what it answered, in `Debug` form.
    fn walk(&self, visitor: &dyn Visitor) -> String;
    /// A trail starting at `from`.
    fn trail(&self, from: Step) -> Box<dyn Trail>;
    /// Keeps `visitor` for [`Walk::poke`].
    fn keep(&self, visitor: Box<dyn Visitor>) -> u64;
    /// Calls the kept visitor with step 99; its answer in `Debug` form.
    fn poke(&self) -> String;
    fn name(&self) -> String;
}
