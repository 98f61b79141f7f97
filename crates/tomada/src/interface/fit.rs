//! The fit check: whether a plugin's contract can serve a host's, and if not, what
//! differs.

use std::collections::HashSet;
use std::fmt;

use super::desc::Style;
use super::model::*;

/// How a plugin fits a host, when it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fit {
    /// How many of the host's methods the plugin provides (the rest return
    /// [`CallError::NotProvided`](crate::CallError::NotProvided), or run the host's
    /// default body).
    pub provided: usize,
    /// The two sides' types differ in ways the byte form bridges (fields appended with
    /// `since`, variants added to open enums): their `#[repr(C)]` forms differ, so
    /// values must cross by their byte form, which reads across minor versions.
    pub by_bytes: bool,
}

/// Which side of a pair has something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The plugin (or, for `tomada diff`, the newer of two builds).
    Plugin,
    /// The host (or the older build).
    Host,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Plugin => "plugin",
            Side::Host => "host",
        })
    }
}

/// One way a plugin's contract differs from a host's that the fit check refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// The contract member (method) that changed, by name; for a method in another
    /// position, the host's.
    pub method: String,
    /// Where inside the method's signature, e.g. ``argument 1 `Entry`, field `kind` `Kind` ``
    /// (empty for the method itself).
    pub at: String,
    /// What changed there.
    pub change: Change,
}

/// What changed, in a [`Difference`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The method at this position has another name on each side.
    Renamed {
        /// 1-based position in the trait.
        position: usize,
        /// The plugin's method there.
        plugin: String,
    },
    /// A method, field or variant is on one side only, and that is not a change the
    /// rules allow (see `why`).
    OnlyIn {
        /// `method`, `field` or `variant`.
        member: &'static str,
        /// Its name.
        name: String,
        /// The side that has it.
        side: Side,
        /// Why it may not be, and what to write instead.
        why: Refusal,
    },
    /// A type is written differently.
    Retyped {
        /// As the plugin writes it.
        plugin: String,
        /// As the host writes it.
        host: String,
    },
    /// The same fields or variants, in another order.
    Reordered {
        /// `fields` or `variants`.
        what: &'static str,
        /// The plugin's order.
        plugin: Vec<String>,
        /// The host's order.
        host: Vec<String>,
    },
    /// The n-th field or variant has another name on each side: something was
    /// inserted, removed, renamed or moved.
    Replaced {
        /// `field` or `variant`.
        member: &'static str,
        /// 1-based position.
        position: usize,
        /// The plugin's.
        plugin: String,
        /// The host's.
        host: String,
    },
    /// A method, field or variant was added in another minor version per each side.
    Since {
        /// Per the plugin.
        plugin: u32,
        /// Per the host.
        host: u32,
    },
    /// `async fn` on one side, plain `fn` on the other.
    Async {
        /// The plugin's method is `async`.
        plugin: bool,
    },
    /// Another number of arguments.
    Arguments {
        /// The plugin's.
        plugin: usize,
        /// The host's.
        host: usize,
    },
    /// A struct's or variant's fields are written in another style.
    Style {
        /// The plugin's.
        plugin: Style,
        /// The host's.
        host: Style,
    },
    /// A struct on one side, an enum or an object on the other.
    Kind {
        /// The plugin's: `a struct`, `an enum`, `a contract object`.
        plugin: &'static str,
        /// The host's.
        host: &'static str,
    },
    /// An enum is open (has a `#[tomada(other)]` variant) on one side only, or its
    /// `other` variant is another one.
    Openness {
        /// The plugin's `other` variant.
        plugin: Option<String>,
        /// The host's.
        host: Option<String>,
    },
    /// A contract object's ABI differs.
    ObjectAbi {
        /// The plugin's.
        plugin: u32,
        /// The host's.
        host: u32,
    },
    /// A contract object's methods differ in name or order.
    ObjectMethods {
        /// The plugin's.
        plugin: Vec<String>,
        /// The host's.
        host: Vec<String>,
    },
}

/// Why a member on one side only is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A method or field without `#[tomada(since = N)]`: added so, it breaks.
    NotAppended,
    /// A variant of a closed enum: a side that does not know it could not read it.
    ClosedEnum,
    /// A variant of an open enum without `since`.
    NotMarked,
    /// A method, field or variant added in minor `since` that the other side lacks
    /// though its contract is minor `minor` (`>= since`): it was removed from a minor
    /// version that had it, so two different contracts claim one version. (A side of
    /// an older minor lacks it by right: that is the minor addition.)
    Removed {
        /// The minor version that added it.
        since: u32,
        /// The minor version of the side that lacks it.
        minor: u32,
    },
}

impl Refusal {
    /// The side lacking a member added in minor `since` is of minor `minor`: a
    /// removal if that minor has it.
    fn lacking(since: u32, minor: u32) -> Option<Refusal> {
        (minor >= since).then_some(Refusal::Removed { since, minor })
    }
}

/// The sentence for [`Refusal::Removed`].
fn removed(f: &mut fmt::Formatter<'_>, member: &str, since: u32, minor: u32) -> fmt::Result {
    write!(
        f,
        ": it was added in minor {since}, and the other side is built against minor {minor}, which has it: it was removed, so two different contracts claim one version; removing a {member} needs a new ABI number (docs/evolution.md)"
    )
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = &self.method;
        let at = &self.at;
        match &self.change {
            Change::Renamed { position, plugin } => write!(
                f,
                "method {position} is `{plugin}` in the plugin, `{m}` in the host (a method was renamed, removed, inserted or moved)"
            ),
            Change::OnlyIn { member: "method", name, side, why: Refusal::Removed { since, minor } } => {
                write!(f, "method `{name}` is only in the {side}")?;
                removed(f, "method", *since, *minor)
            }
            Change::OnlyIn { member: "method", name, side, .. } => write!(
                f,
                "method `{name}` is only in the {side}, and is not a minor addition (`#[tomada(since = N)]` at the end of the trait)"
            ),
            Change::Async { plugin } => {
                let kind = |a: bool| if a { "`async fn`" } else { "a plain `fn`" };
                write!(f, "method `{m}` is {} in the plugin, {} in the host", kind(*plugin), kind(!plugin))
            }
            Change::Since { plugin, host } if at.is_empty() => {
                write!(f, "method `{m}` was added in minor {plugin} per the plugin, {host} per the host")
            }
            Change::Arguments { plugin, host } if at.is_empty() => {
                write!(f, "method `{m}` changed: it takes {plugin} argument(s) in the plugin, {host} in the host")
            }
            change => {
                write!(f, "method `{m}` changed: {at}")?;
                match change {
                    Change::Retyped { plugin, host } => write!(f, " is `{plugin}` in the plugin, `{host}` in the host"),
                    Change::OnlyIn { member, name, side, why } => {
                        let c = if *member == "field" { "," } else { ":" };
                        write!(f, "{c} {member} `{name}` is only in the {side}")?;
                        match why {
                            Refusal::NotAppended => f.write_str(
                                ": a field is added at the end of a struct with `#[tomada(since = N)]` (N the new minor version); removing one breaks every side that reads it",
                            ),
                            Refusal::ClosedEnum => f.write_str(
                                ": the enum is closed, so a side that does not know the variant cannot read it; adding a variant is a new major version, or give the enum a `#[tomada(other)]` unit variant in the next major and add variants with `#[tomada(since = N)]` from then on",
                            ),
                            Refusal::NotMarked => f.write_str(
                                ": a variant is added to an open enum with `#[tomada(since = N)]` (N the new minor version); removing one breaks",
                            ),
                            Refusal::Removed { since, minor } => removed(f, member, *since, *minor),
                        }
                    }
                    Change::Reordered { what, plugin, host } => write!(
                        f,
                        ": {what} are in another order ({} in the plugin, {} in the host; {what} cannot be moved: new ones go at the end with `#[tomada(since = N)]`)",
                        plugin.join(", "),
                        host.join(", ")
                    ),
                    Change::Replaced { member, position, plugin, host } => write!(
                        f,
                        ": {member} {position} is `{plugin}` in the plugin, `{host}` in the host ({member}s cannot be renamed, removed, inserted or moved: new ones go at the end with `#[tomada(since = N)]`)"
                    ),
                    Change::Since { plugin, host } => {
                        write!(f, " was added in minor {plugin} per the plugin, {host} per the host")
                    }
                    Change::Arguments { plugin, host } => {
                        write!(f, " takes {plugin} argument(s) in the plugin, {host} in the host")
                    }
                    Change::Style { plugin, host } => {
                        write!(f, " has {plugin:?}-style fields in the plugin, {host:?}-style in the host")
                    }
                    Change::Kind { plugin, host } => write!(f, " is {plugin} in the plugin, {host} in the host"),
                    Change::Openness { plugin, host } => {
                        let open = |o: &Option<String>| match o {
                            Some(v) => format!("open (`{v}` is its `#[tomada(other)]` variant)"),
                            None => "closed".to_owned(),
                        };
                        write!(
                            f,
                            " is {} in the plugin, {} in the host (opening or closing an enum is a new major version)",
                            open(plugin),
                            open(host)
                        )
                    }
                    Change::ObjectAbi { plugin, host } => {
                        write!(f, " is ABI {plugin} in the plugin, ABI {host} in the host")
                    }
                    Change::ObjectMethods { plugin, host } => write!(
                        f,
                        ": its methods are {} in the plugin, {} in the host (an object contract's methods \
                         cannot change in a minor version yet, not even by methods added at its end: \
                         docs/evolution.md, \"Not yet\")",
                        plugin.join(", "),
                        host.join(", ")
                    ),
                    Change::Renamed { .. } | Change::Async { .. } => Ok(()),
                }
            }
        }
    }
}

impl std::error::Error for Difference {}

impl Interface {
    /// The version as `ABI.minor`, e.g. `1.0`.
    pub fn version(&self) -> String {
        format!("{}.{}", self.abi, self.minor)
    }

    /// Whether a plugin implementing `plugin` can serve a host expecting `self`.
    ///
    /// Names and ABI numbers are compared by the caller (they have errors of their
    /// own); this compares the methods: the shorter list must be a prefix of the
    /// longer, identical in names and types, and every method past it must be a
    /// minor addition (`since > 0`). Inside types, the same rule holds for a struct's
    /// fields (past the common prefix, only `#[tomada(since = N)]` fields) and an
    /// enum's variants (only `since` variants, and only in an open enum, one with a
    /// `#[tomada(other)]` variant); see `docs/evolution.md`. A side may lack such a
    /// member only if its contract is of an older minor version than the member's
    /// `since` (outside contract objects' own types, whose `since` the contract's
    /// minor version does not count): a side of that minor or later lacks it because
    /// it was removed ([`Refusal::Removed`]).
    ///
    /// # Errors
    /// Every difference found, method by method, pointing inside types; each
    /// prints as a sentence that says what to write instead where there is a way.
    ///
    /// # Examples
    /// ```
    /// use tomada::interface::Interface;
    /// # use tomada::Contract;
    /// #[derive(tomada::Abi)]
    /// pub struct Entry { pub key: String, pub tags: Vec<String> }
    /// mod changed {
    ///     #[derive(tomada::Abi)]
    ///     pub struct Entry { pub key: String, pub tags: Vec<u64> }
    /// }
    /// #[tomada::contract(abi = 1, name = "demo::Api")]
    /// pub trait V10 { fn put(&self, entry: Entry) -> bool; }
    /// #[tomada::contract(abi = 1, name = "demo::Api")]
    /// pub trait V11 {
    ///     fn put(&self, entry: Entry) -> bool;
    ///     #[tomada(since = 1)]
    ///     fn count(&self) -> u64;
    /// }
    /// #[tomada::contract(abi = 1, name = "demo::Api")]
    /// pub trait Changed { fn put(&self, entry: changed::Entry) -> bool; }
    ///
    /// let v10 = Interface::from(&<dyn V10 as Contract>::DESCRIPTION);
    /// let v11 = Interface::from(&<dyn V11 as Contract>::DESCRIPTION);
    /// let changed = Interface::from(&<dyn Changed as Contract>::DESCRIPTION);
    /// assert_eq!(v11.fit(&v10).unwrap().provided, 1); // old plugin, new host: `count` missing
    /// assert_eq!(v10.fit(&v11).unwrap().provided, 1); // new plugin, old host: all it knows
    /// let why: Vec<String> = v10.fit(&changed).unwrap_err().iter().map(ToString::to_string).collect();
    /// assert_eq!(why, ["method `put` changed: argument 1 `Entry`, field `tags` is `Vec<u64>` in the plugin, `Vec<String>` in the host"]);
    /// ```
    pub fn fit(&self, plugin: &Interface) -> Result<Fit, Vec<Difference>> {
        let host = self;
        let mut why = Vec::new();
        let mut by_bytes = false;
        let common = host.methods.len().min(plugin.methods.len());
        for (i, (h, p)) in host.methods.iter().zip(&plugin.methods).enumerate() {
            if h.name != p.name {
                why.push(Difference {
                    method: h.name.clone(),
                    at: String::new(),
                    change: Change::Renamed { position: i + 1, plugin: p.name.clone() },
                });
                continue;
            }
            let mut compare = Compare {
                host,
                plugin,
                seen: HashSet::new(),
                why: &mut why,
                method: &h.name,
                by_bytes: false,
                in_object: false,
            };
            compare.method(h, p);
            by_bytes |= compare.by_bytes;
        }
        // Each side's extras, with the minor version of the side that lacks them.
        for (side, extra, minor) in
            [(Side::Plugin, &plugin.methods[common..], host.minor), (Side::Host, &host.methods[common..], plugin.minor)]
        {
            for m in extra {
                let refusal = if m.since == 0 { Some(Refusal::NotAppended) } else { Refusal::lacking(m.since, minor) };
                if let Some(refusal) = refusal {
                    why.push(Difference {
                        method: m.name.clone(),
                        at: String::new(),
                        change: Change::OnlyIn { member: "method", name: m.name.clone(), side, why: refusal },
                    });
                }
            }
        }
        if why.is_empty() {
            Ok(Fit { provided: plugin.methods.len().min(host.methods.len()), by_bytes })
        } else {
            Err(why)
        }
    }
}

/// Walks a host's and a plugin's type side by side and says where they differ.
struct Compare<'a, 'w> {
    host: &'a Interface,
    plugin: &'a Interface,
    /// Pairs of named types already compared (recursive types end here), and
    /// whether inside a contract object: a type met there first is compared again
    /// outside, where a member one side lacks can be a removal.
    seen: HashSet<(usize, usize, bool)>,
    why: &'w mut Vec<Difference>,
    /// The method being compared.
    method: &'a str,
    /// A difference the byte form bridges was found.
    by_bytes: bool,
    /// Inside a contract object's methods, whose types' `since` the contract's minor
    /// version does not count: there a member on one side only cannot be told to be
    /// a removal.
    in_object: bool,
}

impl Compare<'_, '_> {
    fn push(&mut self, at: &str, change: Change) {
        self.why.push(Difference { method: self.method.to_owned(), at: at.to_owned(), change });
    }

    /// Why a member added in minor `since`, on `side` only, is refused, if it is: the
    /// other side's contract is of a minor version that has it.
    fn removal(&self, since: u32, side: Side) -> Option<Refusal> {
        let lacking = match side {
            Side::Plugin => self.host.minor,
            Side::Host => self.plugin.minor,
        };
        if self.in_object { None } else { Refusal::lacking(since, lacking) }
    }

    fn method(&mut self, h: &Method, p: &Method) {
        if h.is_async() != p.is_async() {
            self.push("", Change::Async { plugin: p.is_async() });
            return;
        }
        if h.since != p.since {
            self.push("", Change::Since { plugin: p.since, host: h.since });
        }
        if h.args.len() != p.args.len() {
            self.push("", Change::Arguments { plugin: p.args.len(), host: h.args.len() });
        } else {
            for (j, (ha, pa)) in h.args.iter().zip(&p.args).enumerate() {
                self.ty(&format!("argument {}", j + 1), ha, pa);
            }
        }
        self.ty("the result", h.output(), p.output());
    }

    /// Whether two types are written the same (struct and enum definitions aside:
    /// those are compared by [`Compare::def`]).
    fn same_written(h: &Type, p: &Type) -> bool {
        match (h, p) {
            (Type::Leaf(a), Type::Leaf(b)) => a == b,
            (Type::Generic { name: a, args: x }, Type::Generic { name: b, args: y }) => {
                a == b && x.len() == y.len() && x.iter().zip(y).all(|(x, y)| Self::same_written(x, y))
            }
            (Type::Tuple(x), Type::Tuple(y)) => {
                x.len() == y.len() && x.iter().zip(y).all(|(x, y)| Self::same_written(x, y))
            }
            (Type::Array { elem: a, len: m }, Type::Array { elem: b, len: n }) => m == n && Self::same_written(a, b),
            (Type::Named { name: a, .. }, Type::Named { name: b, .. }) => a == b,
            _ => false,
        }
    }

    fn ty(&mut self, at: &str, h: &Type, p: &Type) {
        if !Self::same_written(h, p) {
            self.push(at, Change::Retyped { plugin: p.to_string(), host: h.to_string() });
            return;
        }
        // Written the same: any difference is inside a struct or enum it uses.
        match (h, p) {
            (Type::Generic { args: x, .. }, Type::Generic { args: y, .. }) | (Type::Tuple(x), Type::Tuple(y)) => {
                for (a, b) in x.iter().zip(y) {
                    self.ty(at, a, b);
                }
            }
            (Type::Array { elem: a, .. }, Type::Array { elem: b, .. }) => self.ty(at, a, b),
            (Type::Named { name, index: hi }, Type::Named { index: pi, .. }) => {
                if !self.seen.insert((*hi, *pi, self.in_object)) {
                    return;
                }
                let (Some(hd), Some(pd)) = (self.host.types.get(*hi), self.plugin.types.get(*pi)) else {
                    return;
                };
                self.def(&format!("{at} `{name}`"), hd, pd);
            }
            _ => {}
        }
    }

    fn def(&mut self, at: &str, h: &TypeDef, p: &TypeDef) {
        match (&h.body, &p.body) {
            (Body::Struct { style: hs, fields: hf }, Body::Struct { style: ps, fields: pf }) => {
                if hs != ps {
                    self.push(at, Change::Style { plugin: *ps, host: *hs });
                    return;
                }
                self.fields(at, hf, pf);
            }
            (Body::Enum { variants: hv }, Body::Enum { variants: pv }) => self.variants(at, hv, pv),
            (Body::Object { abi: ha, methods: hm }, Body::Object { abi: pa, methods: pm }) => {
                if ha != pa {
                    self.push(at, Change::ObjectAbi { plugin: *pa, host: *ha });
                    return;
                }
                let names = |ms: &[Method]| ms.iter().map(|m| m.name.clone()).collect::<Vec<_>>();
                if names(hm) != names(pm) {
                    self.push(at, Change::ObjectMethods { plugin: names(pm), host: names(hm) });
                    return;
                }
                let outer = std::mem::replace(&mut self.in_object, true);
                for (h, p) in hm.iter().zip(pm) {
                    let at = format!("{at}, method `{}`", h.name);
                    if h.args.len() != p.args.len() {
                        self.push(&at, Change::Arguments { plugin: p.args.len(), host: h.args.len() });
                        continue;
                    }
                    for (j, (ha, pa)) in h.args.iter().zip(&p.args).enumerate() {
                        self.ty(&format!("{at}, argument {}", j + 1), ha, pa);
                    }
                    self.ty(&format!("{at}, the result"), &h.ret, &p.ret);
                }
                self.in_object = outer;
            }
            (h, p) => {
                let kind = |b: &Body| match b {
                    Body::Struct { .. } => "a struct",
                    Body::Enum { .. } => "an enum",
                    Body::Object { .. } => "a contract object",
                };
                self.push(at, Change::Kind { plugin: kind(p), host: kind(h) });
            }
        }
    }

    fn variants(&mut self, at: &str, hv: &[Variant], pv: &[Variant]) {
        let other = |v: &[Variant]| v.iter().find(|v| v.other).map(|v| v.name.clone());
        let (ho, po) = (other(hv), other(pv));
        if ho != po {
            self.push(at, Change::Openness { plugin: po, host: ho });
            return;
        }
        let names = |v: &[Variant]| v.iter().map(|v| v.name.clone()).collect::<Vec<_>>();
        let (hn, pn) = (names(hv), names(pv));
        let (mut hs, mut ps) = (hn.clone(), pn.clone());
        hs.sort();
        ps.sort();
        if hn != pn && hs == ps {
            self.push(at, Change::Reordered { what: "variants", plugin: pn, host: hn });
            return;
        }
        for (i, (a, b)) in hv.iter().zip(pv).enumerate() {
            if a.name != b.name {
                self.push(
                    at,
                    Change::Replaced {
                        member: "variant",
                        position: i + 1,
                        plugin: b.name.clone(),
                        host: a.name.clone(),
                    },
                );
                return;
            }
            let vat = format!("{at}, variant `{}`", a.name);
            if a.since != b.since {
                self.push(&vat, Change::Since { plugin: b.since, host: a.since });
            }
            if a.style != b.style {
                self.push(&vat, Change::Style { plugin: b.style, host: a.style });
                continue;
            }
            self.fields(&vat, &a.fields, &b.fields);
        }
        let common = hv.len().min(pv.len());
        for (side, extra) in [(Side::Plugin, &pv[common..]), (Side::Host, &hv[common..])] {
            for v in extra {
                if ho.is_none() {
                    let why = Refusal::ClosedEnum;
                    self.push(at, Change::OnlyIn { member: "variant", name: v.name.clone(), side, why });
                } else if v.since == 0 {
                    let why = Refusal::NotMarked;
                    self.push(at, Change::OnlyIn { member: "variant", name: v.name.clone(), side, why });
                } else if let Some(why) = self.removal(v.since, side) {
                    self.push(at, Change::OnlyIn { member: "variant", name: v.name.clone(), side, why });
                } else {
                    // Arrives at the side that does not know it as its `other` variant.
                    self.by_bytes = true;
                }
            }
        }
    }

    fn fields(&mut self, at: &str, h: &[Field], p: &[Field]) {
        let order = |fs: &[Field]| fs.iter().map(|f| f.name.clone()).collect::<Vec<_>>();
        let (hn, pn) = (order(h), order(p));
        let (mut hs, mut ps) = (hn.clone(), pn.clone());
        hs.sort();
        ps.sort();
        if hn != pn && hs == ps {
            self.push(at, Change::Reordered { what: "fields", plugin: pn, host: hn });
            return;
        }
        for (i, (hf, pf)) in h.iter().zip(p).enumerate() {
            if hf.name != pf.name {
                // A field on one side only, before the end: inserted, removed or renamed.
                if !pn.contains(&hf.name) && hn.contains(&pf.name) {
                    self.push(at, only_field(hf, Side::Host));
                } else if !hn.contains(&pf.name) && pn.contains(&hf.name) {
                    self.push(at, only_field(pf, Side::Plugin));
                } else {
                    self.push(
                        at,
                        Change::Replaced {
                            member: "field",
                            position: i + 1,
                            plugin: pf.name.clone(),
                            host: hf.name.clone(),
                        },
                    );
                }
                return;
            }
            let fat = format!("{at}, field `{}`", hf.name);
            if hf.since != pf.since {
                self.push(&fat, Change::Since { plugin: pf.since, host: hf.since });
            }
            self.ty(&fat, &hf.ty, &pf.ty);
        }
        let common = h.len().min(p.len());
        for (side, extra) in [(Side::Plugin, &p[common..]), (Side::Host, &h[common..])] {
            for f in extra {
                if f.since == 0 {
                    self.push(at, only_field(f, side));
                } else if let Some(why) = self.removal(f.since, side) {
                    self.push(at, Change::OnlyIn { member: "field", name: f.name.clone(), side, why });
                } else {
                    // Appended: the side that lacks it defaults it, or skips it.
                    self.by_bytes = true;
                }
            }
        }
    }
}

fn only_field(f: &Field, side: Side) -> Change {
    Change::OnlyIn { member: "field", name: f.name.clone(), side, why: Refusal::NotAppended }
}
