//! Fixture: a plugin built against `walk::Walk` 1.0, calling the host's visitors and
//! handing out trails.

use std::sync::Mutex;

use walk_api_1_0::{Mood, Step, Trail, Visitor, Walk};

#[derive(Default)]
struct Plugin {
    kept: Mutex<Option<Box<dyn Visitor>>>,
}

impl Walk for Plugin {
    fn walk(&self, visitor: &dyn Visitor) -> String {
        let answers: Vec<Step> = (1..=2).map(|n| visitor.step(Step { n })).collect();
        format!("{answers:?}")
    }
    fn trail(&self, from: Step) -> Box<dyn Trail> {
        Box::new(Path { start: from.n })
    }
    fn keep(&self, visitor: Box<dyn Visitor>) -> u64 {
        *self.kept.lock().unwrap() = Some(visitor);
        1
    }
    fn poke(&self) -> String {
        match &*self.kept.lock().unwrap() {
            Some(visitor) => format!("{:?}", visitor.step(Step { n: 99 })),
            None => "no visitor".into(),
        }
    }
    fn name(&self) -> String {
        "walk 1.0".into()
    }
}

struct Path {
    start: u64,
}

#[tomada::implement]
impl Trail for Path {
    fn next(&self, step: Step) -> Step {
        Step { n: step.n + self.start }
    }
    fn mood(&self) -> Mood {
        Mood::Calm
    }
    async fn later(&self, step: Step) -> Step {
        Step { n: step.n + self.start }
    }
    fn visit(&self, visitor: &dyn Visitor) -> Step {
        visitor.step(Step { n: self.start })
    }
}

tomada::export!(Plugin as Walk);
