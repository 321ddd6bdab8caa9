//! Scope sets, the all-of check, and scope hierarchies.
//!
//! A [`ScopeSet`] holds OAuth scope tokens (RFC 6749 §3.3): the scopes a token was granted,
//! or the scopes an operation needs. A [`ScopeHierarchy`] declares which broader scopes imply
//! narrower ones; MCP (2026-07-28) requires that a broader scope satisfies every scope it
//! implies. The check an operation runs is [`ScopeSet::missing`] (or [`ScopeSet::satisfies`]):
//! *all* required scopes must be granted, directly or through the hierarchy, and the missing
//! ones are exactly what a `403 insufficient_scope` challenge names.
//!
//! ```
//! use mcp_oauth::{ScopeHierarchy, ScopeSet};
//!
//! let hierarchy = ScopeHierarchy::builder()
//!     .imply("calendar:write", "calendar:read")
//!     .build()?;
//! let granted = ScopeSet::from_space_separated("calendar:write");
//! let required: ScopeSet = ["calendar:read", "files:read"].into_iter().collect();
//!
//! assert!(!granted.satisfies(&required, &hierarchy));
//! assert_eq!(granted.missing(&required, &hierarchy).to_string(), "files:read");
//! # Ok::<(), mcp_oauth::scopes::ScopeError>(())
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::iter::FusedIterator;
use std::sync::Arc;

/// The scope that asks for refresh tokens, which MCP says a resource never advertises: not in
/// `scopes_supported`, not in a challenge (SEP-2207).
pub const OFFLINE_ACCESS: &str = "offline_access";

/// Is `s` a valid scope-token: `1*( %x21 / %x23-5B / %x5D-7E )` (RFC 6749 §3.3).
///
/// That is: at least one character, each a printable ASCII character other than space,
/// `"` and `\`. A `const fn`, so declared scopes can be checked at compile time.
///
/// ```
/// use mcp_oauth::scopes::is_valid_scope_token;
///
/// const _: () = assert!(is_valid_scope_token("calendar:read"));
/// assert!(!is_valid_scope_token(""));
/// assert!(!is_valid_scope_token("two scopes"));
/// assert!(!is_valid_scope_token("quote\""));
/// ```
pub const fn is_valid_scope_token(s: &str) -> bool {
    let bytes = s.as_bytes();
    if bytes.is_empty() {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        // Every byte of a non-ASCII character is >= 0x80, so those are refused here too.
        if !is_scope_char(bytes[i]) {
            return false;
        }
        i += 1;
    }
    true
}

/// Whether `b` may appear in a scope-token: RFC 6749 Appendix A's `NQCHAR`,
/// `%x21 / %x23-5B / %x5D-7E` (printable ASCII other than space, `"` and `\`).
pub(crate) const fn is_scope_char(b: u8) -> bool {
    b == 0x21 || (b >= 0x23 && b <= 0x5B) || (b >= 0x5D && b <= 0x7E)
}

/// A set of OAuth scope tokens (RFC 6749 §3.3).
///
/// Order-independent and deduplicated; iteration (and therefore [`Display`](fmt::Display) and
/// [`to_space_separated`](Self::to_space_separated)) is in sorted order, so the `scope=` of a
/// challenge is deterministic. Cloning is cheap: clones share one immutable buffer, and the
/// empty set allocates nothing.
///
/// A `ScopeSet` does not validate its members: the scopes of a received token are kept as
/// they came (a malformed one simply matches nothing). Check declared scopes with
/// [`is_valid_scope_token`] before rendering them into a challenge.
///
/// ```
/// use mcp_oauth::ScopeSet;
///
/// let mut granted = ScopeSet::from_space_separated("files:write  files:read files:read");
/// assert_eq!(granted.len(), 2);
/// assert!(granted.contains("files:read"));
/// assert!(granted.insert("calendar:read"));
/// assert_eq!(granted.to_string(), "calendar:read files:read files:write");
///
/// let required: ScopeSet = ["files:read"].into_iter().collect();
/// assert!(granted.is_superset_of(&required));
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct ScopeSet {
    /// Sorted, deduplicated. `Arc::default()` for the empty set, which does not allocate.
    scopes: Arc<[Box<str>]>,
}

impl ScopeSet {
    /// The empty set. Does not allocate.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses a space-separated scope list, as in a token's `scope` claim or a `scope=`
    /// parameter. Splits on runs of ASCII spaces (only U+0020, as RFC 6749 §3.3 says);
    /// empty pieces are ignored.
    pub fn from_space_separated(s: &str) -> Self {
        Self::from_unsorted(
            s.split(' ')
                .filter(|piece| !piece.is_empty())
                .map(Box::from)
                .collect(),
        )
    }

    /// Adds `scope`. Returns whether it was newly inserted.
    pub fn insert(&mut self, scope: impl Into<String>) -> bool {
        let scope = scope.into();
        match self.position(&scope) {
            Ok(_) => false,
            Err(at) => {
                let mut scopes = self.take_vec();
                scopes.insert(at, scope.into_boxed_str());
                self.scopes = scopes.into();
                true
            }
        }
    }

    /// Whether `scope` is in the set (exact, case-sensitive comparison; no hierarchy).
    pub fn contains(&self, scope: &str) -> bool {
        self.position(scope).is_ok()
    }

    /// The number of scopes.
    pub fn len(&self) -> usize {
        self.scopes.len()
    }

    /// Whether the set has no scopes.
    pub fn is_empty(&self) -> bool {
        self.scopes.is_empty()
    }

    /// The scopes, in sorted order.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            inner: self.scopes.iter(),
        }
    }

    /// Whether every scope of `other` is in this set (exact comparison; no hierarchy).
    pub fn is_superset_of(&self, other: &ScopeSet) -> bool {
        Arc::ptr_eq(&self.scopes, &other.scopes) || other.iter().all(|scope| self.contains(scope))
    }

    /// The scopes of `required` this set lacks, after expanding this set through `hierarchy`
    /// (a broader scope satisfies the narrower ones it implies). Empty = all satisfied.
    ///
    /// Each required scope is looked up on its own (directly, then among the scopes that
    /// imply it), so this set is never expanded, and nothing is allocated when all are
    /// satisfied. The result is what a `403 insufficient_scope` challenge should name.
    ///
    /// ```
    /// use mcp_oauth::{ScopeHierarchy, ScopeSet};
    ///
    /// let granted = ScopeSet::from_space_separated("files:read");
    /// let required = ScopeSet::from_space_separated("files:read files:write");
    /// let missing = granted.missing(&required, &ScopeHierarchy::new());
    /// assert_eq!(missing.to_space_separated(), "files:write");
    /// ```
    pub fn missing(&self, required: &ScopeSet, hierarchy: &ScopeHierarchy) -> ScopeSet {
        // `required` is sorted and deduplicated, so the filtered list is too.
        let missing: Vec<Box<str>> = required
            .scopes
            .iter()
            .filter(|scope| !self.grants(scope, hierarchy))
            .cloned()
            .collect();
        Self::from_sorted(missing)
    }

    /// Whether this set grants *all* of `required`, after the hierarchy. Never allocates.
    ///
    /// ```
    /// use mcp_oauth::{ScopeHierarchy, ScopeSet};
    ///
    /// let hierarchy = ScopeHierarchy::from_pairs([("admin", "files:write")])?;
    /// let granted = ScopeSet::from_space_separated("admin");
    /// assert!(granted.satisfies(&ScopeSet::from_space_separated("files:write"), &hierarchy));
    /// assert!(!granted.satisfies(&ScopeSet::from_space_separated("files:read"), &hierarchy));
    /// # Ok::<(), mcp_oauth::scopes::ScopeError>(())
    /// ```
    pub fn satisfies(&self, required: &ScopeSet, hierarchy: &ScopeHierarchy) -> bool {
        required.iter().all(|scope| self.grants(scope, hierarchy))
    }

    /// The scopes joined by single spaces, in sorted order: the `scope=` value of a challenge.
    /// The same text as [`Display`](fmt::Display).
    pub fn to_space_separated(&self) -> String {
        self.scopes.join(" ")
    }

    /// Whether `scope` is granted by this set, directly or through `hierarchy`.
    fn grants(&self, scope: &str, hierarchy: &ScopeHierarchy) -> bool {
        self.contains(scope)
            || hierarchy
                .implying(scope)
                .any(|broader| self.contains(broader))
    }

    fn position(&self, scope: &str) -> Result<usize, usize> {
        self.scopes.binary_search_by(|member| (**member).cmp(scope))
    }

    /// The members as a vector, moving them out when this set is the only owner.
    fn take_vec(&mut self) -> Vec<Box<str>> {
        match Arc::get_mut(&mut self.scopes) {
            Some(owned) => owned.iter_mut().map(std::mem::take).collect(),
            None => self.scopes.to_vec(),
        }
    }

    fn from_unsorted(mut scopes: Vec<Box<str>>) -> Self {
        scopes.sort_unstable();
        scopes.dedup();
        Self::from_sorted(scopes)
    }

    /// `scopes` must be sorted and deduplicated.
    fn from_sorted(scopes: Vec<Box<str>>) -> Self {
        if scopes.is_empty() {
            Self::new()
        } else {
            Self {
                scopes: scopes.into(),
            }
        }
    }
}

impl fmt::Debug for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ScopeSet ")?;
        f.debug_set().entries(self.iter()).finish()
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, scope) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(scope)?;
        }
        Ok(())
    }
}

impl<S: Into<String>> FromIterator<S> for ScopeSet {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Self {
        Self::from_unsorted(
            iter.into_iter()
                .map(|scope| scope.into().into_boxed_str())
                .collect(),
        )
    }
}

impl<S: Into<String>> Extend<S> for ScopeSet {
    fn extend<I: IntoIterator<Item = S>>(&mut self, iter: I) {
        let mut scopes = self.take_vec();
        let before = scopes.len();
        scopes.extend(iter.into_iter().map(|scope| scope.into().into_boxed_str()));
        if scopes.len() == before && !scopes.is_empty() {
            // Nothing added: put the (moved-out) members back without re-sorting.
            self.scopes = scopes.into();
        } else {
            *self = Self::from_unsorted(scopes);
        }
    }
}

impl<'a> IntoIterator for &'a ScopeSet {
    type Item = &'a str;
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

/// An iterator over scopes in sorted order, from [`ScopeSet::iter`] or
/// [`ScopeHierarchy::implied_by`].
#[derive(Debug, Clone)]
pub struct Iter<'a> {
    inner: std::slice::Iter<'a, Box<str>>,
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        self.inner.next().map(|scope| &**scope)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.inner.next_back().map(|scope| &**scope)
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl FusedIterator for Iter<'_> {}

/// Why a [`ScopeHierarchy`] could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    /// A declared scope is not a scope-token.
    #[error(
        "{0:?} is not a valid OAuth scope (RFC 6749 §3.3 allows one or more printable ASCII \
         characters other than space, '\"' and '\\'); rename the scope"
    )]
    InvalidScope(String),
    /// The implications form a cycle; the scopes on it, in implication order.
    #[error(
        "scope implications form a cycle ({}): scopes that imply each other are one scope; \
         remove one of these implications",
        render_cycle(.0)
    )]
    Cycle(Vec<String>),
    /// A scope is declared to imply itself.
    #[error("scope {0:?} is declared to imply itself; remove that implication")]
    SelfImplication(String),
}

fn render_cycle(cycle: &[String]) -> String {
    let mut out = cycle.join(" -> ");
    if let Some(first) = cycle.first() {
        out.push_str(" -> ");
        out.push_str(first);
    }
    out
}

/// Scope implication declared per resource: `calendar:write` implies `calendar:read`.
///
/// MCP (2026-07-28) requires honouring scope hierarchies: a token granted a broader scope
/// satisfies every narrower scope it implies. Implication is transitive (`a → b`, `b → c`
/// ⇒ `a` satisfies `c`); the transitive closure is computed once, when the hierarchy is
/// built, so checks are lookups. Cycles and self-implications are rejected when building:
/// they are always a configuration mistake.
///
/// ```
/// use mcp_oauth::{ScopeHierarchy, ScopeSet};
///
/// let hierarchy = ScopeHierarchy::builder()
///     .imply("admin", "calendar:write")
///     .imply("calendar:write", "calendar:read")
///     .build()?;
/// assert_eq!(
///     hierarchy.implied_by("admin").collect::<Vec<_>>(),
///     ["calendar:read", "calendar:write"],
/// );
///
/// let granted = ScopeSet::from_space_separated("admin");
/// let required = ScopeSet::from_space_separated("calendar:read");
/// assert!(granted.satisfies(&required, &hierarchy));
/// # Ok::<(), mcp_oauth::scopes::ScopeError>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct ScopeHierarchy {
    /// Scope → every scope it implies, transitively; sorted.
    implies: BTreeMap<Box<str>, Box<[Box<str>]>>,
    /// Scope → every scope that implies it, transitively; sorted.
    implied_from: BTreeMap<Box<str>, Box<[Box<str>]>>,
}

impl ScopeHierarchy {
    /// A hierarchy with no implications: every scope satisfies only itself.
    pub const fn new() -> Self {
        Self {
            implies: BTreeMap::new(),
            implied_from: BTreeMap::new(),
        }
    }

    /// A builder: declare implications with [`imply`](ScopeHierarchyBuilder::imply), then
    /// [`build`](ScopeHierarchyBuilder::build).
    pub fn builder() -> ScopeHierarchyBuilder {
        ScopeHierarchyBuilder::default()
    }

    /// A hierarchy from `(broader, narrower)` pairs.
    ///
    /// # Errors
    ///
    /// As [`ScopeHierarchyBuilder::build`].
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, ScopeError> {
        pairs
            .into_iter()
            .fold(Self::builder(), |builder, (b, n)| builder.imply(b, n))
            .build()
    }

    /// Everything `scope` implies, transitively, in sorted order; not `scope` itself.
    pub fn implied_by(&self, scope: &str) -> Iter<'_> {
        Iter {
            inner: self
                .implies
                .get(scope)
                .map(|implied| implied.iter())
                .unwrap_or_default(),
        }
    }

    /// Whether `broader` implies `narrower`, directly or transitively. A scope does not
    /// "imply" itself here (though it of course satisfies itself).
    pub fn implies(&self, broader: &str, narrower: &str) -> bool {
        self.implies
            .get(broader)
            .is_some_and(|implied| implied.binary_search_by(|s| (**s).cmp(narrower)).is_ok())
    }

    /// `granted` plus everything it implies.
    pub fn expand(&self, granted: &ScopeSet) -> ScopeSet {
        if self.is_empty() {
            return granted.clone();
        }
        let mut expanded: BTreeSet<&str> = granted.iter().collect();
        for scope in granted {
            expanded.extend(self.implied_by(scope));
        }
        if expanded.len() == granted.len() {
            return granted.clone();
        }
        ScopeSet::from_sorted(expanded.into_iter().map(Box::from).collect())
    }

    /// Whether no implications are declared.
    pub fn is_empty(&self) -> bool {
        self.implies.is_empty()
    }

    /// The scopes that imply `scope`, transitively, in sorted order.
    fn implying(&self, scope: &str) -> Iter<'_> {
        let inner = if self.implied_from.is_empty() {
            Default::default()
        } else {
            self.implied_from
                .get(scope)
                .map(|from| from.iter())
                .unwrap_or_default()
        };
        Iter { inner }
    }
}

/// Builds a [`ScopeHierarchy`]; from [`ScopeHierarchy::builder`].
#[derive(Clone, Debug, Default)]
#[must_use]
pub struct ScopeHierarchyBuilder {
    pairs: Vec<(String, String)>,
}

impl ScopeHierarchyBuilder {
    /// Declares that `broader` implies `narrower`: a token granted `broader` satisfies an
    /// operation that requires `narrower`.
    pub fn imply(mut self, broader: impl Into<String>, narrower: impl Into<String>) -> Self {
        self.pairs.push((broader.into(), narrower.into()));
        self
    }

    /// Validates the declarations and computes the transitive closure.
    ///
    /// # Errors
    ///
    /// [`ScopeError::InvalidScope`] for a scope that is not a scope-token,
    /// [`ScopeError::SelfImplication`] for `s → s`, [`ScopeError::Cycle`] naming the scopes
    /// of the first cycle found (for example `a → b → a`).
    pub fn build(self) -> Result<ScopeHierarchy, ScopeError> {
        for (broader, narrower) in &self.pairs {
            for scope in [broader, narrower] {
                if !is_valid_scope_token(scope) {
                    return Err(ScopeError::InvalidScope(scope.clone()));
                }
            }
            if broader == narrower {
                return Err(ScopeError::SelfImplication(broader.clone()));
            }
        }

        // Number the scopes in sorted order, so that every list built from indices below
        // is sorted by name too.
        let names: Vec<&str> = self
            .pairs
            .iter()
            .flat_map(|(b, n)| [b.as_str(), n.as_str()])
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let index = |scope: &str| names.binary_search(&scope).unwrap_or_default();
        let mut edges: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); names.len()];
        for (broader, narrower) in &self.pairs {
            edges[index(broader)].insert(index(narrower));
        }
        let edges: Vec<Vec<usize>> = edges.into_iter().map(|e| e.into_iter().collect()).collect();

        let post_order = post_order(&edges).map_err(|cycle| {
            ScopeError::Cycle(cycle.into_iter().map(|i| names[i].to_owned()).collect())
        })?;

        // In post-order every scope comes after all the scopes it implies.
        let mut closure: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); names.len()];
        for &scope in &post_order {
            let mut implied = BTreeSet::new();
            for &narrower in &edges[scope] {
                implied.insert(narrower);
                implied.extend(closure[narrower].iter().copied());
            }
            closure[scope] = implied;
        }

        let mut implied_from: Vec<Vec<usize>> = vec![Vec::new(); names.len()];
        for (broader, implied) in closure.iter().enumerate() {
            for &narrower in implied {
                implied_from[narrower].push(broader);
            }
        }

        let to_map = |lists: Vec<Vec<usize>>| -> BTreeMap<Box<str>, Box<[Box<str>]>> {
            lists
                .into_iter()
                .enumerate()
                .filter(|(_, list)| !list.is_empty())
                .map(|(scope, list)| {
                    (
                        Box::from(names[scope]),
                        list.into_iter().map(|i| Box::from(names[i])).collect(),
                    )
                })
                .collect()
        };
        Ok(ScopeHierarchy {
            implies: to_map(
                closure
                    .into_iter()
                    .map(|set| set.into_iter().collect())
                    .collect(),
            ),
            implied_from: to_map(implied_from),
        })
    }
}

/// A depth-first post-order of the graph, or the nodes of a cycle in edge order.
/// Iterative, so a long implication chain cannot overflow the stack.
fn post_order(edges: &[Vec<usize>]) -> Result<Vec<usize>, Vec<usize>> {
    const UNVISITED: u8 = 0;
    const ON_PATH: u8 = 1;
    const DONE: u8 = 2;
    let mut state = vec![UNVISITED; edges.len()];
    let mut order = Vec::with_capacity(edges.len());
    for start in 0..edges.len() {
        if state[start] != UNVISITED {
            continue;
        }
        state[start] = ON_PATH;
        // The current path: (node, index of its next edge to follow).
        let mut path = vec![(start, 0)];
        while let Some((node, next)) = path.last_mut() {
            let node = *node;
            if let Some(&target) = edges[node].get(*next) {
                *next += 1;
                match state[target] {
                    UNVISITED => {
                        state[target] = ON_PATH;
                        path.push((target, 0));
                    }
                    ON_PATH => {
                        let from = path
                            .iter()
                            .position(|&(n, _)| n == target)
                            .unwrap_or_default();
                        return Err(path[from..].iter().map(|&(n, _)| n).collect());
                    }
                    _ => {}
                }
            } else {
                state[node] = DONE;
                order.push(node);
                path.pop();
            }
        }
    }
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(s: &str) -> ScopeSet {
        ScopeSet::from_space_separated(s)
    }

    #[test]
    fn broader_scope_satisfies_the_narrower_it_implies() {
        let hierarchy = ScopeHierarchy::from_pairs([("calendar:write", "calendar:read")]).unwrap();
        assert!(set("calendar:write").satisfies(&set("calendar:read"), &hierarchy));
        assert!(set("calendar:write").satisfies(&set("calendar:read calendar:write"), &hierarchy));
        assert!(
            set("calendar:write")
                .missing(&set("calendar:read"), &hierarchy)
                .is_empty()
        );
    }

    #[test]
    fn narrower_scope_does_not_satisfy_the_broader() {
        let hierarchy = ScopeHierarchy::from_pairs([("calendar:write", "calendar:read")]).unwrap();
        assert!(!set("calendar:read").satisfies(&set("calendar:write"), &hierarchy));
    }

    #[test]
    fn implication_is_transitive() {
        let hierarchy = ScopeHierarchy::builder()
            .imply("a", "b")
            .imply("b", "c")
            .build()
            .unwrap();
        assert!(set("a").satisfies(&set("c"), &hierarchy));
        assert!(hierarchy.implies("a", "c"));
        assert_eq!(hierarchy.implied_by("a").collect::<Vec<_>>(), ["b", "c"]);
        assert_eq!(hierarchy.implied_by("b").collect::<Vec<_>>(), ["c"]);
        assert_eq!(hierarchy.implied_by("c").count(), 0);
    }

    #[test]
    fn two_scope_cycle_is_rejected() {
        let err = ScopeHierarchy::from_pairs([("a", "b"), ("b", "a")]).unwrap_err();
        assert_eq!(err, ScopeError::Cycle(vec!["a".into(), "b".into()]));
        assert!(err.to_string().contains("a -> b -> a"), "{err}");
    }

    #[test]
    fn three_scope_cycle_is_rejected() {
        let err = ScopeHierarchy::from_pairs([("a", "b"), ("b", "c"), ("c", "a")]).unwrap_err();
        assert_eq!(
            err,
            ScopeError::Cycle(vec!["a".into(), "b".into(), "c".into()])
        );
    }

    #[test]
    fn cycle_off_the_first_path_is_rejected() {
        let err = ScopeHierarchy::from_pairs([("x", "y"), ("y", "z"), ("z", "y")]).unwrap_err();
        assert_eq!(err, ScopeError::Cycle(vec!["y".into(), "z".into()]));
    }

    #[test]
    fn self_implication_is_rejected() {
        let err = ScopeHierarchy::builder()
            .imply("a", "a")
            .build()
            .unwrap_err();
        assert_eq!(err, ScopeError::SelfImplication("a".into()));
    }

    #[test]
    fn hierarchy_rejects_invalid_scope_tokens() {
        let err = ScopeHierarchy::from_pairs([("a", "b c")]).unwrap_err();
        assert_eq!(err, ScopeError::InvalidScope("b c".into()));
    }

    #[test]
    fn invalid_scope_tokens_are_rejected() {
        for invalid in [
            "",
            " ",
            "a b",
            "\"",
            "a\\b",
            "\u{7f}",
            "caf\u{e9}",
            "\t",
            "\n",
        ] {
            assert!(!is_valid_scope_token(invalid), "{invalid:?}");
        }
    }

    #[test]
    fn valid_scope_tokens_are_accepted() {
        for valid in [
            "!",
            "#",
            "[",
            "]",
            "^",
            "~",
            "calendar:read",
            "https://ex.com/files.read",
        ] {
            assert!(is_valid_scope_token(valid), "{valid:?}");
        }
    }

    #[test]
    fn is_valid_scope_token_is_usable_in_const_evaluation() {
        const { assert!(is_valid_scope_token("files:read")) };
        const { assert!(!is_valid_scope_token("files read")) };
    }

    #[test]
    fn missing_returns_exactly_the_missing_scopes() {
        let hierarchy = ScopeHierarchy::from_pairs([("files:admin", "files:delete")]).unwrap();
        let granted = set("files:read files:admin");
        let required = set("files:read files:write files:delete calendar:read");
        assert_eq!(
            granted.missing(&required, &hierarchy),
            set("calendar:read files:write")
        );
        assert_eq!(granted.missing(&required, &ScopeHierarchy::new()).len(), 3);
        assert!(!granted.satisfies(&required, &hierarchy));
    }

    #[test]
    fn nothing_required_is_always_satisfied() {
        assert!(ScopeSet::new().satisfies(&ScopeSet::new(), &ScopeHierarchy::new()));
        assert!(
            set("a")
                .missing(&ScopeSet::new(), &ScopeHierarchy::new())
                .is_empty()
        );
    }

    #[test]
    fn from_space_separated_ignores_runs_of_spaces() {
        let scopes = set("  files:read   files:write ");
        assert_eq!(
            scopes.iter().collect::<Vec<_>>(),
            ["files:read", "files:write"]
        );
        assert!(set("").is_empty());
        assert!(set("    ").is_empty());
    }

    #[test]
    fn display_round_trips() {
        let scopes = set("b a c");
        assert_eq!(scopes.to_string(), "a b c");
        assert_eq!(scopes.to_space_separated(), scopes.to_string());
        assert_eq!(set(&scopes.to_string()), scopes);
        assert_eq!(ScopeSet::new().to_string(), "");
    }

    #[test]
    fn sets_are_deduplicated_order_independent_and_iterate_sorted() {
        let a: ScopeSet = ["b", "a", "b"].into_iter().collect();
        let b = set("a b");
        assert_eq!(a, b);
        assert_eq!(a.len(), 2);
        assert_eq!(a.iter().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!((&a).into_iter().rev().collect::<Vec<_>>(), ["b", "a"]);
        assert_eq!(format!("{a:?}"), r#"ScopeSet {"a", "b"}"#);
    }

    #[test]
    fn insert_and_extend_keep_the_set_sorted() {
        let mut scopes = set("b");
        let shared = scopes.clone();
        assert!(scopes.insert("a"));
        assert!(!scopes.insert("b"));
        scopes.extend(["d", "c", "a"]);
        assert_eq!(scopes.to_string(), "a b c d");
        assert_eq!(shared.to_string(), "b", "a clone is not affected");
        scopes.extend(Vec::<String>::new());
        assert_eq!(scopes.to_string(), "a b c d");
    }

    #[test]
    fn superset_is_exact_without_hierarchy() {
        assert!(set("a b c").is_superset_of(&set("a c")));
        assert!(set("a").is_superset_of(&ScopeSet::new()));
        assert!(!set("a").is_superset_of(&set("a b")));
    }

    #[test]
    fn expand_adds_everything_implied() {
        let hierarchy = ScopeHierarchy::builder()
            .imply("admin", "write")
            .imply("write", "read")
            .imply("other", "x")
            .build()
            .unwrap();
        assert_eq!(hierarchy.expand(&set("admin")), set("admin write read"));
        assert_eq!(hierarchy.expand(&set("read")), set("read"));
        assert_eq!(ScopeHierarchy::new().expand(&set("admin")), set("admin"));
        assert!(!hierarchy.is_empty());
        assert!(ScopeHierarchy::new().is_empty());
    }
}
