//! Which member edges are boxed: those on a cycle of by-value types.

use super::*;

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

    /// Types holding a `number` (`f64`) directly or deeper (members,
    /// branches, elements, alternatives): they get no `Eq` or `Hash`.
    pub(super) fn find_floaty(&self) -> HashSet<EntityId> {
        let mut floaty: HashSet<EntityId> = self
            .schema
            .iter()
            .filter(|(_, e)| {
                matches!(
                    e.kind,
                    EntityKind::Builtin {
                        json_type: "number"
                    }
                )
            })
            .map(|(id, _)| id)
            .collect();
        loop {
            let mut changed = false;
            for (id, e) in self.schema.iter() {
                if floaty.contains(&id) {
                    continue;
                }
                let hit = match &e.kind {
                    EntityKind::Array { element, .. } => floaty.contains(element),
                    EntityKind::Object(o) => {
                        o.members
                            .iter()
                            .any(|&r| floaty.contains(&self.schema.member(r).ty))
                            || o.branches
                                .iter()
                                .flat_map(|b| &b.variants)
                                .any(|v| floaty.contains(&v.ty))
                    }
                    EntityKind::Alternate { variants } => {
                        variants.iter().any(|v| floaty.contains(&v.ty))
                    }
                    _ => false,
                };
                if hit {
                    floaty.insert(id);
                    changed = true;
                }
            }
            if !changed {
                return floaty;
            }
        }
    }

    /// `Eq, Hash,` for a type without a `number` inside, else nothing.
    pub(super) fn eq_hash(&self, id: EntityId) -> TokenStream {
        if self.floaty.contains(&id) {
            quote!()
        } else {
            quote!(Eq, Hash,)
        }
    }
}
