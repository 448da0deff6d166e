//! The step graph: topological order, cycles, upstream sets and the critical path.

use std::time::Duration;

/// A dependency graph over step indices; `deps[i]` are the steps `i` needs.
#[derive(Debug, Clone)]
pub struct Dag {
    pub deps: Vec<Vec<usize>>,
    pub dependents: Vec<Vec<usize>>,
    /// A topological order (dependencies first), stable with respect to file order.
    pub order: Vec<usize>,
    upstream: Vec<BitSet>,
}

#[derive(Debug, Clone)]
struct BitSet(Vec<u64>);

impl BitSet {
    fn new(n: usize) -> Self {
        BitSet(vec![0; n.div_ceil(64)])
    }
    fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn get(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (i % 64)) != 0
    }
    fn union(&mut self, other: &BitSet) {
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a |= *b;
        }
    }
}

impl Dag {
    /// Builds the graph, or returns one cycle (as step indices, first repeated at the end).
    pub fn new(deps: Vec<Vec<usize>>) -> Result<Dag, Vec<usize>> {
        let n = deps.len();
        let dependents = dependents(&deps);
        let order = topological_order(&deps, &dependents)?;
        let mut upstream = vec![BitSet::new(n); n];
        for &i in &order {
            let mut set = BitSet::new(n);
            for &d in &deps[i] {
                set.set(d);
                set.union(&upstream[d]);
            }
            upstream[i] = set;
        }
        Ok(Dag { deps, dependents, order, upstream })
    }

    pub fn len(&self) -> usize {
        self.deps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.deps.is_empty()
    }

    /// Whether `a` is (transitively) upstream of `b`.
    pub fn is_upstream(&self, a: usize, b: usize) -> bool {
        self.upstream[b].get(a)
    }

    /// The longest path through the remaining work: returns its length and its steps.
    /// `remaining(i)` is the time step `i` still needs (zero for finished steps).
    pub fn critical_path(&self, remaining: impl Fn(usize) -> Duration) -> (Duration, Vec<usize>) {
        longest_path(&self.deps, &self.order, remaining)
    }
}

/// `dependents[d]`: the nodes that need `d`.
fn dependents(deps: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let mut dependents = vec![Vec::new(); deps.len()];
    for (i, ds) in deps.iter().enumerate() {
        for &d in ds {
            dependents[d].push(i);
        }
    }
    dependents
}

/// A topological order of `deps` (dependencies first, stable with respect to index order), or one cycle.
fn topological_order(deps: &[Vec<usize>], dependents: &[Vec<usize>]) -> Result<Vec<usize>, Vec<usize>> {
    let n = deps.len();
    let mut indeg: Vec<usize> = deps.iter().map(Vec::len).collect();
    let mut ready: std::collections::BTreeSet<usize> = (0..n).filter(|&i| indeg[i] == 0).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(i) = ready.pop_first() {
        order.push(i);
        for &j in &dependents[i] {
            indeg[j] -= 1;
            if indeg[j] == 0 {
                ready.insert(j);
            }
        }
    }
    if order.len() < n {
        return Err(find_cycle(deps, &indeg));
    }
    Ok(order)
}

/// The longest chain of `remaining` times through `deps` and its nodes in order; the engine's critical path and
/// the run view's projection both come from here. A graph with a cycle (the runbook loader refuses those) has
/// no longest path: zero and no nodes.
pub fn critical_path_of<T>(deps: &[Vec<usize>], remaining: impl Fn(usize) -> T) -> (T, Vec<usize>)
where
    T: Copy + Ord + Default + std::ops::Add<Output = T>,
{
    match topological_order(deps, &dependents(deps)) {
        Ok(order) => longest_path(deps, &order, remaining),
        Err(_) => (T::default(), Vec::new()),
    }
}

/// The longest path given a topological `order` of `deps`: each node finishes `remaining(i)` after the latest of
/// its dependencies (the first of equals is on the path); the path ends at the latest finish (the first of equals).
fn longest_path<T>(deps: &[Vec<usize>], order: &[usize], remaining: impl Fn(usize) -> T) -> (T, Vec<usize>)
where
    T: Copy + Ord + Default + std::ops::Add<Output = T>,
{
    let n = deps.len();
    let mut finish = vec![T::default(); n];
    let mut prev: Vec<Option<usize>> = vec![None; n];
    for &i in order {
        let mut start = T::default();
        for &d in &deps[i] {
            if finish[d] > start || prev[i].is_none() && finish[d] == start {
                start = finish[d];
                prev[i] = Some(d);
            }
        }
        finish[i] = start + remaining(i);
    }
    let Some(end) = (0..n).max_by_key(|&i| (finish[i], std::cmp::Reverse(i))) else {
        return (T::default(), Vec::new());
    };
    let mut path = vec![end];
    let mut cur = end;
    while let Some(p) = prev[cur] {
        path.push(p);
        cur = p;
    }
    path.reverse();
    (finish[end], path)
}

/// Among the nodes left with in-degree > 0, walk dependencies until a node repeats.
fn find_cycle(deps: &[Vec<usize>], indeg: &[usize]) -> Vec<usize> {
    let Some(start) = (0..deps.len()).find(|&i| indeg[i] > 0) else {
        return Vec::new();
    };
    let mut seen = vec![usize::MAX; deps.len()];
    let mut path = Vec::new();
    let mut cur = start;
    loop {
        if seen[cur] != usize::MAX {
            let mut cycle = path[seen[cur]..].to_vec();
            cycle.push(cur);
            // present the cycle in dependency direction: a needs b needs ... needs a
            return cycle;
        }
        seen[cur] = path.len();
        path.push(cur);
        // follow a dependency that is itself part of the unresolved remainder
        match deps[cur].iter().find(|&&d| indeg[d] > 0) {
            Some(&d) => cur = d,
            None => return path,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_and_finds_upstream() {
        let dag = Dag::new(vec![vec![], vec![0], vec![0], vec![1, 2]]).unwrap();
        assert_eq!(dag.order, vec![0, 1, 2, 3]);
        assert!(dag.is_upstream(0, 3));
        assert!(!dag.is_upstream(1, 2));
    }

    #[test]
    fn names_a_cycle() {
        let err = Dag::new(vec![vec![], vec![2], vec![3], vec![1]]).unwrap_err();
        assert_eq!(err.first(), err.last());
        assert_eq!(err.len(), 4);
    }

    #[test]
    fn critical_path_is_longest() {
        let dag = Dag::new(vec![vec![], vec![], vec![0, 1]]).unwrap();
        let w = [2, 5, 1];
        let (len, path) = dag.critical_path(|i| Duration::from_secs(w[i]));
        assert_eq!(len, Duration::from_secs(6));
        assert_eq!(path, vec![1, 2]);
    }

    #[test]
    fn the_views_critical_path_is_the_engines() {
        // needs listed out of file order (3 needs 4), ties between equal branches, a finished step (0 s)
        let deps = vec![vec![], vec![0], vec![0], vec![1, 2, 4], vec![], vec![3]];
        let w = [0u64, 30, 30, 5, 45, 1];
        let dag = Dag::new(deps.clone()).unwrap();
        let (len, path) = dag.critical_path(|i| Duration::from_secs(w[i]));
        assert_eq!(critical_path_of(&deps, |i| w[i]), (len.as_secs(), path.clone()));
        assert_eq!((len.as_secs(), path), (51, vec![4, 3, 5]));
        assert_eq!(critical_path_of(&[vec![1], vec![0]], |_| 1u64), (0, vec![]), "a cycle has no path");
    }
}
