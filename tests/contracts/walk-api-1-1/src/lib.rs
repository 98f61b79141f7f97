//! `walk::Walk` 1.1: `Step` gains a field and the open enum `Mood` a variant, both
//! crossing inside contract objects' methods; the trait gains an `async fn` with a
//! default body, which a host runs for a 1.0 plugin.

#![allow(missing_docs)]

#[derive(tomada::Abi, Debug, Clone, PartialEq)]
pub struct Step {
    pub n: u64,
    #[tomada(since = 1, default = "unnamed".to_owned())]
    pub name: String,
}

#[derive(tomada::Abi, Debug, Clone, PartialEq)]
pub enum Mood {
    Calm,
    #[tomada(since = 1)]
    Giddy(String),
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
    /// `steps` steps along a trail from 1: where it ends, and who walked it. For a
    /// 1.0 plugin the host runs this body, calling the plugin's `trail` and `name`.
    #[tomada(since = 1)]
    async fn pace(&self, steps: u64) -> String {
        let end = self.trail(Step { n: 1, name: "pace".into() }).next(Step { n: steps, name: String::new() });
        format!("host default: {} by {}", end.n, self.name())
    }
    /// A trail from `from`, and the way this one went, as objects; the host runs this
    /// body for a 1.0 plugin (its result becomes handles there).
    #[tomada(since = 1)]
    fn shortcut(&self, from: Step) -> Option<Box<dyn Trail>> {
        Some(self.trail(from))
    }
    #[tomada(since = 1)]
    async fn shortcut_later(&self, from: Step) -> Box<dyn Trail> {
        self.trail(from)
    }
}
