//! What a change between two versions of a contract does to the sides built against
//! each, member by member: the classifier behind `tomada diff OLD NEW`, a gate for CI
//! (as cargo-semver-checks is for a crate's API). The rules are those of the fit
//! check ([`Interface::fit`]) in both directions; `docs/evolution.md` writes them down.

use std::collections::HashSet;
use std::fmt;

use super::fit::Difference;
use super::model::{Body, Field, Interface, Type, TypeDef, Variant};

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
        let text = d.to_string().replace("the plugin", "the new").replace("the host", "the old");
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
    // In the old only: the new is of an older minor version (the fit check refuses a
    // removal from a minor version that had the member). Hosts built against the old
    // are then the newer side.
    for m in &old.methods[common..] {
        let (compat, then) = if m.fallback {
            (Compat::BothWays, "hosts built against the old run its default body for plugins built against the new")
        } else {
            (
                Compat::NewerReadsOlder,
                "hosts built against the old get `CallError::NotProvided` from plugins built against the new",
            )
        };
        let body = if m.fallback { "with" } else { "without" };
        out.push(MemberChange {
            member: format!("method `{}`", m.name),
            compat,
            what: format!(
                "not in the new, a minor-{} build (it was appended in minor {} {body} a default body): {then}",
                new.minor, m.since
            ),
        });
    }
    for t in &new.types {
        let Some(o) = old.types.iter().find(|o| o.name == t.name) else { continue };
        types(o, t, new.minor, &mut out);
    }
    out
}

/// Fields appended to, or not in, one struct or enum variant (`member` names it):
/// `new_minor` is the new build's minor version.
fn fields(member: &str, of: &[Field], nf: &[Field], new_minor: u32, out: &mut Vec<MemberChange>) {
    for f in nf.iter().skip(of.len()) {
        out.push(MemberChange {
            member: member.to_owned(),
            compat: Compat::BothWays,
            what: format!(
                "field `{}` appended in minor {}: older sides' values arrive with its default, and older sides skip it",
                f.name, f.since
            ),
        });
    }
    for f in of.iter().skip(nf.len()) {
        out.push(MemberChange {
            member: member.to_owned(),
            compat: Compat::BothWays,
            what: format!(
                "field `{}` (appended in minor {}) not in the new, a minor-{new_minor} build: values from builds of the new arrive at builds of the old with its default, and builds of the new skip it",
                f.name, f.since
            ),
        });
    }
}

/// Appended fields and added variants of one struct or enum, and those not in the new.
fn types(old: &TypeDef, new: &TypeDef, new_minor: u32, out: &mut Vec<MemberChange>) {
    match (&old.body, &new.body) {
        (Body::Struct { fields: of, .. }, Body::Struct { fields: nf, .. }) => {
            fields(&format!("struct `{}`", new.name), of, nf, new_minor, out);
        }
        (Body::Enum { variants: ov }, Body::Enum { variants: nv }) => {
            // Fields appended to a variant both have (the fit check compared the
            // common variants' names).
            for (o, n) in ov.iter().zip(nv) {
                fields(&format!("enum `{}`, variant `{}`", new.name, n.name), &o.fields, &n.fields, new_minor, out);
            }
            let other = |vs: &[Variant]| vs.iter().find(|v| v.other).map_or("other", |v| v.name.as_str()).to_owned();
            for v in nv.iter().skip(ov.len()) {
                out.push(MemberChange {
                    member: format!("enum `{}`", new.name),
                    compat: Compat::BothWays,
                    what: format!(
                        "variant `{}` added in minor {}: it arrives at older sides as `{}`",
                        v.name,
                        v.since,
                        other(nv)
                    ),
                });
            }
            for v in ov.iter().skip(nv.len()) {
                out.push(MemberChange {
                    member: format!("enum `{}`", new.name),
                    compat: Compat::BothWays,
                    what: format!(
                        "variant `{}` (added in minor {}) not in the new, a minor-{new_minor} build: builds of the new read it as `{}`",
                        v.name,
                        v.since,
                        other(ov)
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

/// Map and set key types that changed between `old` and `new` (fields or variants
/// added or removed, anywhere inside the key), one sentence each: keys the newer
/// side tells apart only by what the other lacks are equal there, and the side
/// decoding such a map or set refuses it (`WireError::DuplicateKey`). For `tomada
/// diff`'s warnings; they change no [`Compat`].
pub fn evolved_keys(old: &Interface, new: &Interface) -> Vec<String> {
    let mut walk = KeyWalk { old, new, seen: HashSet::new(), warned: HashSet::new(), out: Vec::new() };
    for m in &new.methods {
        for t in m.args.iter().chain([&m.ret]) {
            walk.ty(t, &m.name);
        }
    }
    walk.out
}

/// Looks for maps and sets in `new`'s types.
struct KeyWalk<'a> {
    old: &'a Interface,
    new: &'a Interface,
    /// Named types already walked.
    seen: HashSet<usize>,
    /// Key types already warned about.
    warned: HashSet<usize>,
    out: Vec<String>,
}

impl KeyWalk<'_> {
    fn ty(&mut self, t: &Type, method: &str) {
        match t {
            Type::Generic { name, args } => {
                if matches!(name.as_str(), "BTreeMap" | "HashMap" | "BTreeSet" | "HashSet")
                    && let Some(key) = args.first()
                {
                    let mut inside = Vec::new();
                    named_in(self.new, key, &mut HashSet::new(), &mut inside);
                    for i in inside {
                        if self.changed(i) && self.warned.insert(i) {
                            self.out.push(format!(
                                "`{}` changed between the two builds and is inside the key of `{t}` (method `{method}`): keys that differ only in a variant or field one side does not know are equal there, and a call with such keys fails (`WireError::DuplicateKey`); key maps and sets by types that do not evolve (docs/evolution.md)",
                                self.new.types[i].name
                            ));
                        }
                    }
                }
                for a in args {
                    self.ty(a, method);
                }
            }
            Type::Tuple(items) => items.iter().for_each(|a| self.ty(a, method)),
            Type::Array { elem, .. } => self.ty(elem, method),
            Type::Named { index, .. } => {
                if !self.seen.insert(*index) {
                    return;
                }
                let fields: Vec<Type> = match self.new.types.get(*index).map(|d| &d.body) {
                    Some(Body::Struct { fields, .. }) => fields.iter().map(|f| f.ty.clone()).collect(),
                    Some(Body::Enum { variants }) => {
                        variants.iter().flat_map(|v| v.fields.iter().map(|f| f.ty.clone())).collect()
                    }
                    _ => Vec::new(),
                };
                for f in &fields {
                    self.ty(f, method);
                }
            }
            Type::Leaf(_) => {}
        }
    }

    /// Whether the new's type `i` has other fields or variants than the old's of its
    /// name.
    fn changed(&self, i: usize) -> bool {
        let new = &self.new.types[i];
        let Some(old) = self.old.types.iter().find(|o| o.name == new.name) else { return false };
        let names = |fs: &[Field]| fs.iter().map(|f| f.name.clone()).collect::<Vec<_>>();
        match (&old.body, &new.body) {
            (Body::Struct { fields: a, .. }, Body::Struct { fields: b, .. }) => names(a) != names(b),
            (Body::Enum { variants: a }, Body::Enum { variants: b }) => {
                a.len() != b.len()
                    || a.iter().zip(b).any(|(x, y)| x.name != y.name || names(&x.fields) != names(&y.fields))
            }
            _ => false,
        }
    }
}

/// The structs and enums inside `t` (itself included), by index in `iface.types`.
fn named_in(iface: &Interface, t: &Type, seen: &mut HashSet<usize>, out: &mut Vec<usize>) {
    match t {
        Type::Generic { args: items, .. } | Type::Tuple(items) => {
            items.iter().for_each(|a| named_in(iface, a, seen, out));
        }
        Type::Array { elem, .. } => named_in(iface, elem, seen, out),
        Type::Named { index, .. } => {
            if !seen.insert(*index) {
                return;
            }
            out.push(*index);
            match iface.types.get(*index).map(|d| &d.body) {
                Some(Body::Struct { fields, .. }) => fields.iter().for_each(|f| named_in(iface, &f.ty, seen, out)),
                Some(Body::Enum { variants }) => {
                    variants.iter().flat_map(|v| &v.fields).for_each(|f| named_in(iface, &f.ty, seen, out));
                }
                _ => {}
            }
        }
        Type::Leaf(_) => {}
    }
}
