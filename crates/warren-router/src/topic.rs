//! Topic routing: a trie over the words of binding keys, walked as a set of states.
//!
//! # Semantics (RabbitMQ's `rabbit_exchange_type_topic`)
//!
//! A key is split on `.` into words; empty words are words (`"a..b"` is `a`, ``, `b`;
//! `"a."` is `a`, ``), except that the empty key `""` is **zero** words, as RabbitMQ's
//! `split_topic_key(<<>>) -> []`. In a binding key the word `*` matches exactly one word (an
//! empty one included) and `#` matches zero or more words; anything else, `a*` included, is
//! literal. Hence routing key `""` matches binding keys `""` and `#` but not `*`, and
//! routing key `"."` (two empty words) matches `*.*`, `#` and `.` but not `*`.
//!
//! # Structure
//!
//! Each trie node is a prefix of one or more binding keys; its children are literal words
//! (a hash map), one `*` child and one `#` child; the destinations bound with exactly that
//! key hang on the node with a binding count. Runs of `#` are collapsed when a key enters the
//! trie (`#.#` matches exactly what `#` matches), so `a.#.#.b` and `a.#.b` share a node;
//! the table keeps the original key for identity.
//!
//! Routing simulates the trie as an automaton instead of backtracking: the set of states
//! (node, "entered through `#`") is advanced one routing-key word at a time; a `#` state
//! stays in the set (it swallows the word) and entering any node also enters its `#` child
//! (which may swallow nothing). States are deduplicated at each step, so the cost is at most
//! words x live states, with no exponential blow-up on patterns such as `#.a.#.a.#.a`.

use std::collections::HashMap;
use std::hash::Hash;

use crate::seen::SeenSet;

/// The words of a topic key: none for `""`, otherwise the `.`-separated pieces.
pub(crate) fn words(key: &str) -> impl Iterator<Item = &str> {
    // `split` yields one empty piece for `""`; RabbitMQ treats `""` as zero words.
    key.split('.').filter(move |_| !key.is_empty())
}

/// One word of a binding key, as the trie sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Segment<'a> {
    Literal(&'a str),
    /// `*`: exactly one word.
    Star,
    /// `#`: zero or more words.
    Hash,
}

/// The segments of a binding key, with runs of `#` collapsed into one.
fn segments(binding_key: &str) -> Vec<Segment<'_>> {
    let mut out: Vec<Segment<'_>> = Vec::new();
    for word in words(binding_key) {
        let segment = match word {
            "*" => Segment::Star,
            "#" => Segment::Hash,
            literal => Segment::Literal(literal),
        };
        if !(segment == Segment::Hash && out.last() == Some(&Segment::Hash)) {
            out.push(segment);
        }
    }
    out
}

/// A trie node: one binding-key prefix.
#[derive(Debug)]
struct Node<D> {
    literal: HashMap<Box<str>, Node<D>>,
    star: Option<Box<Node<D>>>,
    hash: Option<Box<Node<D>>>,
    /// Destinations whose binding key ends here, with how many bindings (argument tables)
    /// each has for this key.
    destinations: HashMap<D, u32>,
}

impl<D> Node<D> {
    fn new() -> Self {
        Self {
            literal: HashMap::new(),
            star: None,
            hash: None,
            destinations: HashMap::new(),
        }
    }

    fn is_empty(&self) -> bool {
        self.destinations.is_empty()
            && self.literal.is_empty()
            && self.star.is_none()
            && self.hash.is_none()
    }

    fn child_or_insert(&mut self, segment: Segment<'_>) -> &mut Node<D> {
        match segment {
            Segment::Literal(word) => self.literal.entry(word.into()).or_insert_with(Node::new),
            Segment::Star => self.star.get_or_insert_with(|| Box::new(Node::new())),
            Segment::Hash => self.hash.get_or_insert_with(|| Box::new(Node::new())),
        }
    }

    fn child_mut(&mut self, segment: Segment<'_>) -> Option<&mut Node<D>> {
        match segment {
            Segment::Literal(word) => self.literal.get_mut(word),
            Segment::Star => self.star.as_deref_mut(),
            Segment::Hash => self.hash.as_deref_mut(),
        }
    }

    fn remove_child(&mut self, segment: Segment<'_>) {
        match segment {
            Segment::Literal(word) => {
                self.literal.remove(word);
            }
            Segment::Star => self.star = None,
            Segment::Hash => self.hash = None,
        }
    }
}

/// The topic index of one exchange: binding key pattern -> destinations.
#[derive(Debug)]
pub(crate) struct TopicTrie<D> {
    root: Node<D>,
}

impl<D: Eq + Hash> TopicTrie<D> {
    pub(crate) fn new() -> Self {
        Self { root: Node::new() }
    }

    /// Records one more binding of `destination` with `binding_key`.
    pub(crate) fn insert(&mut self, binding_key: &str, destination: D) {
        let mut node = &mut self.root;
        for segment in segments(binding_key) {
            node = node.child_or_insert(segment);
        }
        *node.destinations.entry(destination).or_insert(0) += 1;
    }

    /// Forgets `count` bindings of `destination` with `binding_key` (all of them if `count`
    /// is at least their number), pruning nodes left empty.
    pub(crate) fn remove(&mut self, binding_key: &str, destination: &D, count: u32) {
        remove_at(&mut self.root, &segments(binding_key), destination, count);
    }

    /// Calls `f` once for each destination with a binding key matching `routing_key`.
    pub(crate) fn route_each(&self, routing_key: &str, mut f: impl FnMut(&D)) {
        let mut current = Frontier::new();
        let mut next = Frontier::new();
        current.enter(&self.root, false);
        for word in words(routing_key) {
            next.clear();
            for &(node, through_hash) in &current.states {
                if through_hash {
                    // `#` swallows this word and stays.
                    next.push(node, true);
                }
                if let Some(child) = node.literal.get(word) {
                    next.enter(child, false);
                }
                if let Some(child) = &node.star {
                    next.enter(child, false);
                }
            }
            std::mem::swap(&mut current, &mut next);
            if current.states.is_empty() {
                return;
            }
        }
        // Several matching nodes may hold the same destination: report it once.
        if let [(node, _)] = current.states.as_slice() {
            node.destinations.keys().for_each(f);
            return;
        }
        let mut seen = SeenSet::new();
        for (node, _) in &current.states {
            for destination in node.destinations.keys() {
                if seen.insert(destination) {
                    f(destination);
                }
            }
        }
    }
}

/// Removes along `segments` below `node`; returns whether `node` is left empty.
fn remove_at<D: Eq + Hash>(
    node: &mut Node<D>,
    segments: &[Segment<'_>],
    destination: &D,
    count: u32,
) -> bool {
    match segments.split_first() {
        None => {
            if let Some(n) = node.destinations.get_mut(destination) {
                *n = n.saturating_sub(count);
                if *n == 0 {
                    node.destinations.remove(destination);
                }
            }
        }
        Some((&segment, rest)) => {
            if let Some(child) = node.child_mut(segment)
                && remove_at(child, rest, destination, count)
            {
                node.remove_child(segment);
            }
        }
    }
    node.is_empty()
}

/// The set of live automaton states during one routing walk, deduplicated by node.
struct Frontier<'t, D> {
    /// (node, whether it was entered through a `#` edge and so may swallow more words)
    states: Vec<(&'t Node<D>, bool)>,
    seen: SeenSet<*const Node<D>>,
}

impl<'t, D> Frontier<'t, D> {
    fn new() -> Self {
        Self {
            states: Vec::new(),
            seen: SeenSet::new(),
        }
    }

    fn clear(&mut self) {
        self.states.clear();
        self.seen.clear();
    }

    fn push(&mut self, node: &'t Node<D>, through_hash: bool) {
        if self.seen.insert(std::ptr::from_ref(node)) {
            self.states.push((node, through_hash));
        }
    }

    /// Enters `node`, and its `#` child, which matches zero words at this point.
    fn enter(&mut self, node: &'t Node<D>, through_hash: bool) {
        self.push(node, through_hash);
        if let Some(hash) = &node.hash {
            // Runs of `#` are collapsed at insert, so one level of this is enough.
            self.push(hash, true);
        }
    }
}
