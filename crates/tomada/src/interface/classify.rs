//! What a change between two versions of a contract does to the sides built against
//! each, member by member: the classifier behind `tomada diff OLD NEW`, a gate for CI
//! (as cargo-semver-checks is for a crate's API). The rules are those of the fit
//! check ([`Interface::fit`]) in both directions; `docs/evolution.md` writes them down.

use std::fmt;

use super::fit::Difference;
use super::model::{Body, Interface, TypeDef};

/// How a change affects the two sides, from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Compat {
    /// Nothing changed.
    Same,
    /// Every pairing works and behaves: an old plugin in a new host, a new plugin in
    /// an old host (appended fields default or are skipped, added variants of open
    /// enums arrive as the `other` variant, methods with default bodies run the
    /// host's fallback for old plugins).
    BothWays,
    /// Every pairing loads, but a newer host reading an older plugin lacks something:
    /// a method appended without a default body answers `CallError::NotProvided`.
    NewerReadsOlder,
    /// Some pairing is refused at load.
    Breaking,
}

impl Compat {
    /// The exit code `tomada diff` ends with: 0 for [`Compat::Same`] and
    /// [`Compat::BothWays`], 3 for [`Compat::NewerReadsOlder`], 1 for
    /// [`Compat::Breaking`] (2 is for files that cannot be read).
    pub fn exit_code(self) -> u8 {
        match self {
            Compat::Same | Compat::BothWays => 0,
            Compat::NewerReadsOlder => 3,
            Compat::Breaking => 1,
        }
    }
}

impl fmt::Display for Compat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Compat::Same => "unchanged",
            Compat::BothWays => "compatible both ways",
            Compat::NewerReadsOlder => "newer reads older",
            Compat::Breaking => "breaking",
        })
    }
}

/// One member's change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberChange {
    /// The member: ``method `count` ``, ``struct `Order` ``, ``enum `State` ``, or
    /// `the contract`.
    pub member: String,
    /// What the change does.
    pub compat: Compat,
    /// What changed, in words.
    pub what: String,
}

impl fmt::Display for MemberChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} ({})", self.member, self.what, self.compat)
    }
}

/// Every change from `old` to `new`, member by member; empty if none.
pub fn classify(old: &Interface, new: &Interface) -> Vec<MemberChange> {
    let mut out = Vec::new();
    let contract = |what: String| MemberChange { member: "the contract".into(), compat: Compat::Breaking, what };
    if old.name != new.name {
        out.push(contract(format!("is `{}` in the old, `{}` in the new", old.name, new.name)));
        return out;
    }
    if old.abi != new.abi {
        out.push(contract(format!(
            "ABI {} in the old, {} in the new: a new major version, which no side of the other loads",
            old.abi, new.abi
        )));
        return out;
    }
    // Old host with a new plugin ("plugin" is the new side), then the reverse.
    let breaking: Vec<Difference> = match (old.fit(new), new.fit(old)) {
        (Err(why), _) => why,
        (Ok(_), Err(why)) => why,
        (Ok(_), Ok(_)) => Vec::new(),
    };
    for d in breaking {
        let text = d.to_string().replace("in the plugin", "in the new").replace("in the host", "in the old");
        let prefix = format!("method `{}` changed: ", d.method);
        let what = text.strip_prefix(&prefix).map_or_else(|| text.clone(), str::to_owned);
        out.push(MemberChange { member: format!("method `{}`", d.method), compat: Compat::Breaking, what });
    }
    if !out.is_empty() {
        return out;
    }
    let common = old.methods.len().min(new.methods.len());
    for m in &new.methods[common..] {
        let (compat, what) = if m.fallback {
            (
                Compat::BothWays,
                format!("appended in minor {} with a default body, which hosts run for older plugins", m.since),
            )
        } else {
            (
                Compat::NewerReadsOlder,
                format!(
                    "appended in minor {} without a default body: older plugins answer `CallError::NotProvided`",
                    m.since
                ),
            )
        };
        out.push(MemberChange { member: format!("method `{}`", m.name), compat, what });
    }
    for m in &old.methods[common..] {
        out.push(MemberChange {
            member: format!("method `{}`", m.name),
            compat: Compat::NewerReadsOlder,
            what: format!(
                "removed (it was a minor-{} addition): the old hosts' calls to it answer `CallError::NotProvided`",
                m.since
            ),
        });
    }
    for t in &new.types {
        let Some(o) = old.types.iter().find(|o| o.name == t.name) else { continue };
        types(o, t, &mut out);
    }
    out
}

/// Appended fields and added variants of one struct or enum.
fn types(old: &TypeDef, new: &TypeDef, out: &mut Vec<MemberChange>) {
    match (&old.body, &new.body) {
        (Body::Struct { fields: of, .. }, Body::Struct { fields: nf, .. }) => {
            for f in nf.iter().skip(of.len()) {
                out.push(MemberChange {
                    member: format!("struct `{}`", new.name),
                    compat: Compat::BothWays,
                    what: format!(
                        "field `{}` appended in minor {}: older sides' values arrive with its default, and older sides skip it",
                        f.name, f.since
                    ),
                });
            }
        }
        (Body::Enum { variants: ov }, Body::Enum { variants: nv }) => {
            let other = nv.iter().find(|v| v.other).map_or("other", |v| v.name.as_str());
            for v in nv.iter().skip(ov.len()) {
                out.push(MemberChange {
                    member: format!("enum `{}`", new.name),
                    compat: Compat::BothWays,
                    what: format!(
                        "variant `{}` added in minor {}: it arrives at older sides as `{other}`",
                        v.name, v.since
                    ),
                });
            }
        }
        _ => {}
    }
}

/// The worst of the changes ([`Compat::Same`] for none).
pub fn verdict(changes: &[MemberChange]) -> Compat {
    changes.iter().map(|c| c.compat).max().unwrap_or(Compat::Same)
}
