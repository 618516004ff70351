//! `flatmap_filter`: KrakenD's operations on a backend's data (krakend
//! flatmap's tree, which lura uses in both generations). The data becomes a
//! tree whose edges are object keys and array indexes; `move`, `append` and
//! `del` work on its edges, `*` standing for every edge of a level; the tree
//! then becomes data again. The same rules, quirks included: a move whose
//! paths have the same length only renames the last edge, wherever its
//! parents were meant to go; an array whose elements were moved away keeps
//! its remaining elements in order, renumbered; an element emptied by `del`
//! becomes `null`.

use sepia_config::FlatmapOp;
use serde_json::{Map, Value};

const WILDCARD: &str = "*";

#[derive(Debug, Default)]
struct Node {
    /// A leaf's value (`null` for Go's nil), or an empty object or array.
    value: Value,
    is_collection: bool,
    edges: Vec<Edge>,
}

#[derive(Debug)]
struct Edge {
    label: String,
    node: Node,
}

impl Node {
    fn add(&mut self, keys: &[String], value: Value) {
        let Some((first, rest)) = keys.split_first() else {
            self.flatten(value);
            return;
        };
        if let Some(edge) = self.edges.iter_mut().find(|e| &e.label == first) {
            edge.node.add(rest, value);
            return;
        }
        let mut child = Node::default();
        child.add(rest, value);
        self.edges.push(Edge {
            label: first.clone(),
            node: child,
        });
    }

    fn flatten(&mut self, value: Value) {
        match value {
            Value::Object(map) => {
                self.is_collection = false;
                if map.is_empty() {
                    self.value = Value::Object(map);
                    return;
                }
                for (key, item) in map {
                    self.add(&[key], item);
                }
            }
            Value::Array(items) => {
                self.is_collection = true;
                if items.is_empty() {
                    self.value = Value::Array(items);
                    return;
                }
                for (i, item) in items.into_iter().enumerate() {
                    self.add(&[i.to_string()], item);
                }
            }
            other => {
                self.is_collection = false;
                self.value = other;
            }
        }
    }

    fn del(&mut self, keys: &[String]) {
        let Some((first, rest)) = keys.split_first() else {
            return;
        };
        if self.edges.is_empty() {
            return;
        }
        if first == WILDCARD {
            if rest.is_empty() {
                self.edges.clear();
            } else {
                for edge in &mut self.edges {
                    edge.node.del(rest);
                }
            }
            return;
        }
        if let Some(i) = self.edges.iter().position(|e| &e.label == first) {
            if rest.is_empty() {
                self.edges.remove(i);
            } else {
                self.edges[i].node.del(rest);
            }
        }
    }

    fn get(&self, keys: &[String]) -> Value {
        let Some((first, rest)) = keys.split_first() else {
            return self.expand();
        };
        if self.edges.is_empty() {
            return Value::Null;
        }
        if first == WILDCARD {
            return Value::Array(self.edges.iter().map(|e| e.node.get(rest)).collect());
        }
        self.edges
            .iter()
            .find(|e| &e.label == first)
            .map_or(Value::Null, |e| e.node.get(rest))
    }

    fn expand(&self) -> Value {
        if self.edges.is_empty() {
            return self.value.clone();
        }
        if self.is_collection {
            return Value::Array(self.edges.iter().map(|e| e.node.get(&[])).collect());
        }
        let mut map = Map::new();
        for edge in &self.edges {
            map.insert(edge.label.clone(), edge.node.get(&[]));
        }
        Value::Object(map)
    }

    fn at_mut(&mut self, path: &[usize]) -> &mut Node {
        match path.split_first() {
            None => self,
            Some((i, rest)) => self.edges[*i].node.at_mut(rest),
        }
    }

    fn at(&self, path: &[usize]) -> &Node {
        match path.split_first() {
            None => self,
            Some((i, rest)) => self.edges[*i].node.at(rest),
        }
    }
}

/// A node reached by a move's source prefix: where it is (edge indexes
/// from the root) and the labels on the way.
struct Candidate {
    at: Vec<usize>,
    labels: Vec<String>,
}

struct Tree {
    root: Node,
}

impl Tree {
    fn new(data: Value) -> Self {
        let mut root = Node::default();
        root.add(&[], data);
        Self { root }
    }

    fn append(&mut self, from: &[String], to: &[String]) {
        let (Value::Array(source), Value::Array(mut target)) =
            (self.root.get(from), self.root.get(to))
        else {
            return;
        };
        target.extend(source);
        self.root.add(to, Value::Array(target));
        self.root.del(from);
    }

    fn candidates(&self, prefix: &[String]) -> Vec<Candidate> {
        let mut next = vec![Candidate {
            at: Vec::new(),
            labels: Vec::new(),
        }];
        for step in prefix {
            let mut found = Vec::new();
            for candidate in &next {
                let node = self.root.at(&candidate.at);
                for (i, edge) in node.edges.iter().enumerate() {
                    if step != WILDCARD && &edge.label != step {
                        continue;
                    }
                    let mut at = candidate.at.clone();
                    at.push(i);
                    let mut labels = candidate.labels.clone();
                    labels.push(edge.label.clone());
                    found.push(Candidate { at, labels });
                    if step != WILDCARD {
                        break;
                    }
                }
            }
            next = found;
        }
        next
    }

    fn move_edges(&mut self, from: &[String], to: &[String]) {
        let (Some(last), Some(_)) = (from.last(), to.last()) else {
            return;
        };
        let candidates = self.candidates(&from[..from.len() - 1]);
        let relabel = from.len() == to.len();
        let mut moved: Vec<(Candidate, Edge)> = Vec::new();
        for candidate in candidates {
            let node = self.root.at_mut(&candidate.at);
            let Some(i) = node.edges.iter().position(|e| &e.label == last) else {
                continue;
            };
            if relabel {
                node.edges[i].label = to[to.len() - 1].clone();
                continue;
            }
            let edge = node.edges.remove(i);
            moved.push((candidate, edge));
        }
        if relabel {
            return;
        }
        if from.len() > to.len() {
            self.promote(moved, to);
        } else {
            Self::embed(&mut self.root, moved, &to[from.len() - 1..]);
        }
    }

    /// A move to a shorter path: each edge goes under the node `to`'s
    /// prefix names (a `*` there takes the label the edge came through),
    /// as deep as that prefix exists.
    fn promote(&mut self, moved: Vec<(Candidate, Edge)>, to: &[String]) {
        let (last, prefix) = to
            .split_last()
            .map_or(("", &[][..]), |(l, p)| (l.as_str(), p));
        for (candidate, mut edge) in moved {
            let mut parent = &mut self.root;
            for (i, step) in prefix.iter().enumerate() {
                let label = if step == WILDCARD {
                    candidate.labels.get(i).map_or("", String::as_str)
                } else {
                    step.as_str()
                };
                match parent.edges.iter().position(|e| e.label == label) {
                    Some(j) => parent = &mut parent.edges[j].node,
                    None => break,
                }
            }
            edge.label = last.to_owned();
            parent.edges.push(edge);
        }
    }

    /// A move to a longer path: each edge goes under the node it was taken
    /// from, down the rest of `to`, made as needed.
    fn embed(root: &mut Node, moved: Vec<(Candidate, Edge)>, rest: &[String]) {
        let (last, prefix) = rest
            .split_last()
            .map_or(("", &[][..]), |(l, p)| (l.as_str(), p));
        for (candidate, mut edge) in moved {
            let mut node = root.at_mut(&candidate.at);
            for step in prefix {
                let j = match node.edges.iter().position(|e| &e.label == step) {
                    Some(j) => j,
                    None => {
                        node.edges.push(Edge {
                            label: step.clone(),
                            node: Node::default(),
                        });
                        node.edges.len() - 1
                    }
                };
                node = &mut node.edges[j].node;
            }
            edge.label = last.to_owned();
            node.edges.push(edge);
        }
    }
}

/// Runs `ops` on `data`; what is not an object at the end is no data, as
/// lura reads it.
pub fn apply(ops: &[FlatmapOp], data: Map<String, Value>) -> Map<String, Value> {
    let mut tree = Tree::new(Value::Object(data));
    for op in ops {
        match op {
            FlatmapOp::Move(from, to) => tree.move_edges(from, to),
            FlatmapOp::Append(from, to) => tree.append(from, to),
            FlatmapOp::Del(paths) => {
                for path in paths {
                    tree.root.del(path);
                }
            }
        }
    }
    match tree.root.get(&[]) {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn path(text: &str) -> Vec<String> {
        text.split('.').map(str::to_owned).collect()
    }

    fn run(data: Value, ops: Vec<FlatmapOp>) -> Value {
        Value::Object(apply(&ops, data.as_object().unwrap().clone()))
    }

    #[test]
    fn the_krakend_ce_suite_case() {
        let items: Vec<Value> = (0..3).map(|i| json!({"i": i, "path": "/c"})).collect();
        let out = run(
            json!({"collection": items}),
            vec![
                FlatmapOp::Move(path("collection"), path("paths")),
                FlatmapOp::Del(vec![path("paths.*.i")]),
                FlatmapOp::Move(path("paths.*.path"), path("paths.*.url")),
            ],
        );
        assert_eq!(
            out,
            json!({"paths": [{"url": "/c"}, {"url": "/c"}, {"url": "/c"}]})
        );
    }

    #[test]
    fn del_follows_the_tree_and_empties_become_null() {
        // From krakend flatmap's ExampleNew.
        let data = json!({"a": {"b": true, "c": 42,
            "collection": [{"b": false, "d": "aaaa"}, {"b": true, "c": 42}],
            "collection2": [{"d": [{"a": 1, "d": [1, 2]}, {"d": [1]}]}, {"d": [1, 2]}]}});
        let out = run(
            data,
            vec![FlatmapOp::Del(vec![
                path("a.b"),
                path("a.collection.0"),
                path("a.collection2.*.d.*.d"),
            ])],
        );
        assert_eq!(
            out,
            json!({"a": {"c": 42, "collection": [{"b": true, "c": 42}],
                "collection2": [{"d": [{"a": 1}, null]}, {"d": [1, 2]}]}})
        );
    }

    #[test]
    fn moves_embed_promote_and_append_joins_arrays() {
        let data = json!({"a": {"b": {"c": 1}}, "x": [1, 2], "y": [3]});
        let out = run(
            data.clone(),
            vec![FlatmapOp::Move(path("a.b.c"), path("z"))],
        );
        // The emptied object has no edges and no value left: null, as Go's
        // tree gives it.
        assert_eq!(
            out,
            json!({"a": {"b": null}, "x": [1, 2], "y": [3], "z": 1})
        );
        let out = run(
            data.clone(),
            vec![FlatmapOp::Move(path("x"), path("a.b.list"))],
        );
        assert_eq!(out, json!({"a": {"b": {"c": 1, "list": [1, 2]}}, "y": [3]}));
        let out = run(data, vec![FlatmapOp::Append(path("y"), path("x"))]);
        assert_eq!(out, json!({"a": {"b": {"c": 1}}, "x": [1, 2, 3]}));
    }
}
