//! Fixture: a plugin built against `walk::Walk` 1.0, calling the host's visitor.

use walk_api_1_0::{Step, Visitor, Walk};

#[derive(Default)]
struct Plugin;

impl Walk for Plugin {
    fn walk(&self, visitor: &dyn Visitor) -> String {
        let answers: Vec<Step> = (1..=2).map(|n| visitor.step(Step { n })).collect();
        format!("{answers:?}")
    }
}

tomada::export!(Plugin as Walk);
