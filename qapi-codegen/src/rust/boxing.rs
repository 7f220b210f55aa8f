//! Which member edges are boxed: those on a cycle of by-value types, and
//! large values that are often absent (a union's branch, an optional
//! member, an event in `AnyEvent`) — see [`LARGE`].

use super::*;

/// Inline size, in estimated bytes, from which a union's branch, an
/// optional member or an event in `AnyEvent` is boxed. An enum is as large as its largest branch and
/// a struct holds its optional members' room when they are absent, and
/// every move of a decoded value (a `Vec` growing, a return) copies all
/// of it: `ImageInfo` held a 320-byte qcow2 branch inline for images that
/// have none (BENCHMARKS.md has what boxing gained). Boxing costs one
/// allocation when the value is there.
pub(super) const LARGE: usize = 128;

/// How deep [`Plan::layout`] follows members into other types at once.
const MAX_LAYOUT_DEPTH: usize = 256;

/// A type's estimated layout: size and alignment in bytes, and whether
/// it has a niche (so that an `Option` of it takes no more room).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Layout {
    size: usize,
    align: usize,
    niche: bool,
}

impl Layout {
    const fn new(size: usize, align: usize, niche: bool) -> Layout {
        Layout { size, align, niche }
    }

    /// A pointer-sized owner (`Box`) or three words (`String`, `Vec`).
    const BOX: Layout = Layout::new(8, 8, true);
    const VEC: Layout = Layout::new(24, 8, true);

    /// `Option<Self>`.
    fn optional(self) -> Layout {
        if self.niche {
            self
        } else {
            Layout::new(round_up(self.size + 1, self.align), self.align, true)
        }
    }

    /// A struct of these fields (Rust orders them to leave no holes
    /// but the tail's).
    fn fields(fields: impl IntoIterator<Item = Layout>) -> Layout {
        let mut out = Layout::new(0, 1, false);
        for f in fields {
            out.size += f.size;
            out.align = out.align.max(f.align);
            out.niche |= f.niche;
        }
        out.size = round_up(out.size, out.align);
        out
    }

    /// An enum of these payloads: the largest, and a tag word unless
    /// the largest has a niche to hold the tag.
    fn variants(payloads: impl IntoIterator<Item = Layout>) -> Layout {
        let largest = payloads
            .into_iter()
            .max_by_key(|p| p.size)
            .unwrap_or(Layout::new(0, 1, false));
        let tag = if largest.niche { 0 } else { 8 };
        Layout::new(largest.size + tag, 8, true)
    }
}

fn round_up(n: usize, align: usize) -> usize {
    n.div_ceil(align.max(1)) * align.max(1)
}

impl<'s> Plan<'s> {
    /// Object-ish types a type holds by value (arrays excluded: `Vec`
    /// breaks the size cycle).
    pub(super) fn value_edges(&self, id: EntityId) -> Vec<EntityId> {
        let mut out = Vec::new();
        let mut push = |t: EntityId| {
            if matches!(
                self.schema.entities.get(t).map(|e| &e.kind),
                Some(EntityKind::Object(_) | EntityKind::Alternate { .. })
            ) {
                out.push(t);
            }
        };
        match &self.schema.entities[id].kind {
            EntityKind::Object(o) => {
                for &m in &o.members {
                    push(self.schema.member(m).ty);
                }
                if let Some(b) = &o.branches {
                    for v in &b.variants {
                        push(v.ty);
                    }
                }
            }
            EntityKind::Alternate { variants } => {
                for v in variants {
                    push(v.ty);
                }
            }
            _ => {}
        }
        out
    }

    pub(super) fn find_recursion(&mut self) {
        let n = self.schema.entities.len();
        let edges: Vec<Vec<EntityId>> = (0..n).map(|id| self.value_edges(id)).collect();
        let mut reach_cache: HashMap<EntityId, HashSet<EntityId>> = HashMap::new();
        for a in 0..n {
            for &b in &edges[a] {
                let reach = reach_cache.entry(b).or_insert_with(|| {
                    let mut seen = HashSet::new();
                    let mut stack = vec![b];
                    while let Some(x) = stack.pop() {
                        for &y in &edges[x] {
                            if seen.insert(y) {
                                stack.push(y);
                            }
                        }
                    }
                    seen
                });
                if a == b || reach.contains(&a) {
                    self.boxed.insert((a, b));
                }
            }
        }
    }

    /// Boxes the branches, optional members and events whose type's
    /// estimated size is [`LARGE`] or more (after [`Plan::find_recursion`], whose
    /// boxes break the cycles the estimate would otherwise follow).
    pub(super) fn find_large(&mut self) {
        let mut sizes = HashMap::new();
        for id in 0..self.schema.entities.len() {
            self.layout(id, &mut sizes, 0);
        }
        // `AnyEvent` is an enum over every event: its large ones boxed.
        for (id, e) in self.schema.iter() {
            if let EntityKind::Event(ev) = &e.kind
                && let Some(&l) = ev.arg_type.and_then(|a| sizes.get(&a))
                && self.decide_boxed(shapes::event_key(&e.name), l)
            {
                self.large_events.insert(id);
            }
        }
    }

    /// The estimated layout of type `id` as generated, boxing its large
    /// edges on the way; `memo` holds the types done, `depth` how many
    /// types the walk is inside.
    fn layout(
        &mut self,
        id: EntityId,
        memo: &mut HashMap<EntityId, Layout>,
        depth: usize,
    ) -> Layout {
        if let Some(&l) = memo.get(&id) {
            return l;
        }
        // A chain of types this deep (none in QEMU's schemas) is sized
        // piecewise: its deepest types are estimated as a box here, and
        // sized on their own by `find_large`'s loop, without a stack
        // overflow.
        if depth >= MAX_LAYOUT_DEPTH {
            return Layout::BOX;
        }
        self.layout_uncached(id, memo, depth)
    }

    fn layout_uncached(
        &mut self,
        id: EntityId,
        memo: &mut HashMap<EntityId, Layout>,
        depth: usize,
    ) -> Layout {
        // A cycle not broken by a box (impossible after find_recursion):
        // count it as a box so that the walk ends.
        memo.insert(id, Layout::BOX);
        let schema = self.schema;
        let e = &schema.entities[id];
        let l = match &e.kind {
            EntityKind::Builtin { .. } => match e.name.as_str() {
                "str" => Layout::VEC,
                "int8" | "uint8" => Layout::new(1, 1, false),
                "int16" | "uint16" => Layout::new(2, 2, false),
                "int32" | "uint32" => Layout::new(4, 4, false),
                "bool" => Layout::new(1, 1, true),
                "null" => Layout::new(0, 1, false),
                "any" => Layout::new(32, 8, true),
                _ => Layout::new(8, 8, false),
            },
            // `Unknown(String)` beside unit variants.
            EntityKind::Enum { .. } | EntityKind::Array { .. } => Layout::VEC,
            EntityKind::Object(o) => {
                // A union of nothing but its branches is just the branch
                // enum; other objects keep unknown members in `extra`.
                let mut fields = if self.union_is_enum(id) {
                    Vec::new()
                } else {
                    vec![Layout::BOX]
                };
                let tag = o.branches.as_ref().map(|b| b.tag_name.as_str());
                for &r in &o.members {
                    let m = schema.member(r);
                    // The discriminator is the enum's variant.
                    if Some(m.name.as_str()) == tag {
                        continue;
                    }
                    let optional = Self::member_optional(m);
                    let l = self.edge(id, m.ty, optional, memo, depth);
                    fields.push(if optional { l.optional() } else { l });
                }
                if let Some(b) = &o.branches {
                    // `Unknown { tag, members }`, and the branches.
                    let mut payloads = vec![Layout::new(48, 8, true)];
                    for v in &b.variants {
                        payloads.push(self.edge(id, v.ty, true, memo, depth));
                    }
                    fields.push(Layout::variants(payloads));
                }
                Layout::fields(fields)
            }
            EntityKind::Alternate { variants } => {
                // Boxed for recursion only: an alternate's value is
                // always there.
                let payloads: Vec<Layout> = variants
                    .iter()
                    .map(|v| self.edge(id, v.ty, false, memo, depth))
                    .collect();
                Layout::variants(payloads)
            }
            _ => Layout::new(0, 1, false),
        };
        memo.insert(id, l);
        l
    }

    /// The layout of `owner`'s member or branch of type `ty`, boxed when
    /// recursion needs it, or when it may be absent (`optional`: an
    /// optional member or a branch) and is large (recorded in `large`).
    fn edge(
        &mut self,
        owner: EntityId,
        ty: EntityId,
        optional: bool,
        memo: &mut HashMap<EntityId, Layout>,
        depth: usize,
    ) -> Layout {
        if self.boxed.contains(&(owner, ty)) {
            return Layout::BOX;
        }
        let l = self.layout(ty, memo, depth + 1);
        let boxable = matches!(
            self.schema.entities[ty].kind,
            EntityKind::Object(_) | EntityKind::Alternate { .. }
        );
        if !(optional && boxable) {
            return l;
        }
        let key = shapes::edge_key(
            &self.schema.entities[owner].name,
            &self.schema.entities[ty].name,
        );
        if self.decide_boxed(key, l) {
            self.large.insert((owner, ty));
            return Layout::BOX;
        }
        l
    }

    /// Whether the member, branch or event `key`, of layout `l`, is boxed
    /// for size: as decided before ([`Options::shapes`]), else by
    /// [`LARGE`] now, the first time it is seen; the decision is noted for
    /// the next generation.
    fn decide_boxed(&mut self, key: String, l: Layout) -> bool {
        let boxed = self.frozen.get(&key).unwrap_or(l.size >= LARGE);
        self.decided.insert(key, boxed);
        boxed
    }

    /// Whether `owner`'s member or branch of type `ty` is boxed; `optional`:
    /// an optional member or a branch (a value that may be absent).
    pub(super) fn is_boxed(&self, owner: EntityId, ty: EntityId, optional: bool) -> bool {
        self.boxed.contains(&(owner, ty)) || (optional && self.large.contains(&(owner, ty)))
    }

    /// `Eq, Hash,`: every generated type has them, whatever a newer QEMU
    /// adds inside it (a `number` is `rt::Number`, which is `Eq` and
    /// `Hash`; so are `any` and every other member type).
    pub(super) fn eq_hash(&self) -> TokenStream {
        quote!(Eq, Hash,)
    }
}
