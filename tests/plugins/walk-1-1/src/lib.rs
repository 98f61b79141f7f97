//! Fixture: a plugin built against `walk::Walk` 1.1, calling the host's visitors and
//! handing out trails whose `Step`s carry names and whose mood is 1.1's `Giddy`.

use std::sync::Mutex;

use walk_api_1_1::{Mood, Step, Trail, Visitor, Walk};

#[derive(Default)]
struct Plugin {
    kept: Mutex<Option<Box<dyn Visitor>>>,
}

#[tomada::implement]
impl Walk for Plugin {
    fn walk(&self, visitor: &dyn Visitor) -> String {
        let answers: Vec<Step> = (1..=2).map(|n| visitor.step(Step { n, name: "plugin".into() })).collect();
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
            Some(visitor) => format!("{:?}", visitor.step(Step { n: 99, name: "plugin".into() })),
            None => "no visitor".into(),
        }
    }
    fn name(&self) -> String {
        "walk 1.1".into()
    }
    async fn pace(&self, steps: u64) -> String {
        format!("plugin 1.1 paced {steps}")
    }
}

struct Path {
    start: u64,
}

#[tomada::implement]
impl Trail for Path {
    fn next(&self, step: Step) -> Step {
        Step { n: step.n + self.start, name: format!("{}+", step.name) }
    }
    fn mood(&self) -> Mood {
        Mood::Giddy("yes".into())
    }
    async fn later(&self, step: Step) -> Step {
        Step { n: step.n + self.start, name: format!("{}+", step.name) }
    }
    fn visit(&self, visitor: &dyn Visitor) -> Step {
        visitor.step(Step { n: self.start, name: "plugin".into() })
    }
}

tomada::export!(Plugin as Walk);
