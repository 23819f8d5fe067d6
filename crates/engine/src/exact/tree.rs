//! Exact `ai.onnx.ml` tree ensembles (spec §4.9): features are compared
//! exactly against the thresholds (the comparison of the dequantized input
//! with the float threshold, no rounding of thresholds), leaf weights are
//! summed in fixed point with `ACC_EXTRA` more fractional bits than the
//! outputs, and post transforms use the exact softmax and sigmoid.

use super::arith::{div_round, quantize, round_shift};
use super::funcs::{self, Func};
use super::ir::XT;
use super::ops::{overflow, R};
use super::reduce::softmax;
use std::collections::HashMap;
use tract_onnx::pb::{AttributeProto, NodeProto};

/// Extra fractional bits of leaf sums over the output scale.
pub(crate) const ACC_EXTRA: i32 = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cond {
    Leaf,
    Le,
    Lt,
    Ge,
    Gt,
    Eq,
    Ne,
}

#[derive(Clone, Debug)]
struct Node {
    cond: Cond,
    feature: usize,
    /// Integer threshold at the input scale (see [`threshold`]).
    t: i64,
    /// For `Eq`/`Ne`: the threshold is exactly representable.
    exact: bool,
    yes: usize,
    no: usize,
    votes: (usize, usize),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Post {
    None,
    Softmax,
    Logistic,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Agg {
    Sum,
    Average,
    Min,
    Max,
}

/// A compiled tree ensemble.
pub(crate) struct TreePlan {
    nodes: Vec<Node>,
    roots: Vec<usize>,
    votes: Vec<(usize, i64)>,
    n_targets: usize,
    base: Vec<i64>,
    post: Post,
    agg: Agg,
    /// Class labels (classifier), or None (regressor).
    labels: Option<Vec<i64>>,
    binary: Option<usize>,
    n_features: usize,
    fo: i32,
}

fn attr<'a>(n: &'a NodeProto, name: &str) -> Option<&'a AttributeProto> {
    n.attribute.iter().find(|a| a.name == name)
}

fn ints(n: &NodeProto, name: &str) -> Vec<i64> {
    attr(n, name).map(|a| a.ints.clone()).unwrap_or_default()
}

fn string(n: &NodeProto, name: &str) -> Option<String> {
    attr(n, name).map(|a| String::from_utf8_lossy(&a.s).to_string())
}

/// A float list attribute or its `_as_tensor` (double) variant.
fn floats(n: &NodeProto, name: &str) -> R<Vec<f64>> {
    if let Some(a) = attr(n, name) {
        return Ok(a.floats.iter().map(|v| *v as f64).collect());
    }
    if let Some(t) = attr(n, &format!("{name}_as_tensor")).and_then(|a| a.t.as_ref()) {
        if !t.double_data.is_empty() {
            return Ok(t.double_data.clone());
        }
        if !t.float_data.is_empty() {
            return Ok(t.float_data.iter().map(|v| *v as f64).collect());
        }
        let raw = t.raw_data.as_slice();
        return Ok(match t.data_type {
            11 => raw
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                .collect(),
            1 => raw
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap_or([0; 4])) as f64)
                .collect(),
            dt => return Err(format!("{name}_as_tensor has element type {dt}")),
        });
    }
    Ok(vec![])
}

/// The integer threshold `t` such that comparing the input integer `X`
/// with `t` decides `X * 2^-fx <mode> v` exactly.
fn threshold(cond: Cond, v: f64, fx: i32) -> R<(i64, bool)> {
    if !v.is_finite() {
        return Err(format!("threshold {v} is not finite"));
    }
    let scaled = v * super::arith::pow2(fx);
    let clamp = |x: f64| x.clamp(-9.0e18, 9.0e18) as i64;
    Ok(match cond {
        Cond::Le | Cond::Gt => (clamp(scaled.floor()), true),
        Cond::Lt | Cond::Ge => (clamp(scaled.ceil()), true),
        Cond::Eq | Cond::Ne => (
            clamp(scaled),
            scaled.fract() == 0.0 && scaled.abs() < 9.0e18,
        ),
        Cond::Leaf => (0, true),
    })
}

impl TreePlan {
    /// Parses a `TreeEnsembleClassifier` or `TreeEnsembleRegressor` node.
    pub(crate) fn parse(node: &NodeProto, fx: i32, fo: i32) -> R<TreePlan> {
        let classifier = node.op_type == "TreeEnsembleClassifier";
        let prefix = if classifier { "class" } else { "target" };
        let labels = if classifier {
            let l = ints(node, "classlabels_int64s");
            if l.is_empty() {
                return Err("only integer class labels are supported".into());
            }
            Some(l)
        } else {
            None
        };
        let n_targets = match &labels {
            Some(l) => l.len(),
            None => attr(node, "n_targets")
                .map(|a| a.i)
                .unwrap_or(1)
                .clamp(1, 1 << 20) as usize,
        };
        let tree_ids = ints(node, "nodes_treeids");
        let node_ids = ints(node, "nodes_nodeids");
        let features = ints(node, "nodes_featureids");
        let trues = ints(node, "nodes_truenodeids");
        let falses = ints(node, "nodes_falsenodeids");
        let values = floats(node, "nodes_values")?;
        let modes: Vec<String> = attr(node, "nodes_modes")
            .map(|a| {
                a.strings
                    .iter()
                    .map(|s| String::from_utf8_lossy(s).to_string())
                    .collect()
            })
            .unwrap_or_default();
        let n = tree_ids.len();
        if n == 0
            || [node_ids.len(), features.len(), modes.len(), values.len()]
                .iter()
                .any(|l| *l != n)
        {
            return Err("inconsistent tree attributes".into());
        }
        let mut index = HashMap::new();
        let mut roots = vec![];
        let mut seen = std::collections::HashSet::new();
        for i in 0..n {
            if index.insert((tree_ids[i], node_ids[i]), i).is_some() {
                return Err("a tree node is defined twice".into());
            }
            if seen.insert(tree_ids[i]) {
                roots.push(i);
            }
        }
        let mut nodes = Vec::with_capacity(n);
        let mut n_features = 0;
        for i in 0..n {
            let cond = match modes[i].as_str() {
                "LEAF" => Cond::Leaf,
                "BRANCH_LEQ" => Cond::Le,
                "BRANCH_LT" => Cond::Lt,
                "BRANCH_GTE" => Cond::Ge,
                "BRANCH_GT" => Cond::Gt,
                "BRANCH_EQ" => Cond::Eq,
                "BRANCH_NEQ" => Cond::Ne,
                m => return Err(format!("unknown node mode {m}")),
            };
            let (yes, no, feature) = if cond == Cond::Leaf {
                (i, i, 0)
            } else {
                let find = |id: Option<&i64>| {
                    id.and_then(|id| index.get(&(tree_ids[i], *id)).copied())
                        .filter(|c| *c != i)
                        .ok_or_else(|| "a branch refers to a missing node".to_string())
                };
                let f =
                    usize::try_from(features[i]).map_err(|_| "negative feature id".to_string())?;
                n_features = n_features.max(f + 1);
                (find(trues.get(i))?, find(falses.get(i))?, f)
            };
            let (t, exact) = threshold(cond, values[i], fx)?;
            nodes.push(Node {
                cond,
                feature,
                t,
                exact,
                yes,
                no,
                votes: (0, 0),
            });
        }
        let fa = fo + ACC_EXTRA;
        let v_trees = ints(node, &format!("{prefix}_treeids"));
        let v_nodes = ints(node, &format!("{prefix}_nodeids"));
        let v_ids = ints(node, &format!("{prefix}_ids"));
        let v_w = floats(node, &format!("{prefix}_weights"))?;
        if v_trees.len() != v_ids.len() || v_nodes.len() != v_ids.len() || v_w.len() != v_ids.len()
        {
            return Err("inconsistent vote attributes".into());
        }
        let mut per: Vec<Vec<(usize, i64)>> = vec![vec![]; n];
        for j in 0..v_ids.len() {
            let i = *index
                .get(&(v_trees[j], v_nodes[j]))
                .ok_or("a vote refers to a missing node")?;
            let t = usize::try_from(v_ids[j])
                .ok()
                .filter(|t| *t < n_targets)
                .ok_or("vote target out of range")?;
            let w = quantize(v_w[j], fa).ok_or_else(|| overflow("leaf weight"))?;
            per[i].push((t, w));
        }
        let mut votes = vec![];
        for (nd, v) in nodes.iter_mut().zip(per) {
            nd.votes = (votes.len(), votes.len() + v.len());
            votes.extend(v);
        }
        let base = floats(node, "base_values")?
            .iter()
            .map(|b| quantize(*b, fa).ok_or_else(|| overflow("base value")))
            .collect::<R<Vec<_>>>()?;
        if !base.is_empty() && base.len() != n_targets {
            return Err("base_values has the wrong length".into());
        }
        let post = match string(node, "post_transform").as_deref().unwrap_or("NONE") {
            "NONE" => Post::None,
            "SOFTMAX" => Post::Softmax,
            "LOGISTIC" => Post::Logistic,
            p => return Err(format!("post_transform {p} is not supported in exact mode")),
        };
        let agg = match string(node, "aggregate_function")
            .as_deref()
            .unwrap_or("SUM")
        {
            "SUM" => Agg::Sum,
            "AVERAGE" => Agg::Average,
            "MIN" => Agg::Min,
            "MAX" => Agg::Max,
            a => return Err(format!("aggregate_function {a}")),
        };
        let used: std::collections::HashSet<usize> = votes.iter().map(|v| v.0).collect();
        let binary = (classifier && n_targets == 2 && used.len() == 1)
            .then(|| used.into_iter().next())
            .flatten();
        let plan = TreePlan {
            nodes,
            roots,
            votes,
            n_targets,
            base,
            post,
            agg,
            labels,
            binary,
            n_features,
            fo,
        };
        plan.check_acyclic()?;
        Ok(plan)
    }

    fn check_acyclic(&self) -> R<()> {
        // Every path from a root is at most as long as the number of nodes.
        let mut depth = vec![usize::MAX; self.nodes.len()];
        let mut stack: Vec<(usize, usize)> = self.roots.iter().map(|r| (*r, 0)).collect();
        while let Some((i, d)) = stack.pop() {
            if d > self.nodes.len() {
                return Err("the trees contain a cycle".into());
            }
            if depth[i] != usize::MAX && depth[i] >= d {
                continue;
            }
            depth[i] = d;
            let nd = &self.nodes[i];
            if nd.cond != Cond::Leaf {
                stack.push((nd.yes, d + 1));
                stack.push((nd.no, d + 1));
            }
        }
        Ok(())
    }

    fn leaf(&self, root: usize, row: &[i64]) -> &Node {
        let mut nd = &self.nodes[root];
        while nd.cond != Cond::Leaf {
            let x = row[nd.feature];
            let c = match nd.cond {
                Cond::Le => x <= nd.t,
                Cond::Lt => x < nd.t,
                Cond::Ge => x >= nd.t,
                Cond::Gt => x > nd.t,
                Cond::Eq => nd.exact && x == nd.t,
                Cond::Ne => !(nd.exact && x == nd.t),
                Cond::Leaf => true,
            };
            nd = &self.nodes[if c { nd.yes } else { nd.no }];
        }
        nd
    }

    /// Runs on `X [N, F]` (or `[F]`): classifier outputs (labels, scores),
    /// regressor outputs (values).
    pub(crate) fn run(&self, x: &XT) -> R<Vec<XT>> {
        let (n, f) = match x.shape.as_slice() {
            [f] => (1, *f),
            [n, f] => (*n, *f),
            s => return Err(format!("tree ensemble input of shape {s:?}")),
        };
        if f < self.n_features {
            return Err(format!(
                "input has {f} features, the trees read {}",
                self.n_features
            ));
        }
        let xs = x.as_i64()?;
        let t = self.n_targets;
        let fa = self.fo + ACC_EXTRA;
        let one = 1i64 << fa;
        let mut scores = Vec::with_capacity(n * t);
        let mut labels = Vec::with_capacity(n);
        for r in 0..n {
            let row = &xs[r * f..(r + 1) * f];
            let mut s = vec![0i64; t];
            let mut has = vec![false; t];
            for &root in &self.roots {
                let (a, b) = self.leaf(root, row).votes;
                for &(c, w) in &self.votes[a..b] {
                    s[c] = match self.agg {
                        Agg::Sum | Agg::Average => {
                            s[c].checked_add(w).ok_or_else(|| overflow("leaf sum"))?
                        }
                        Agg::Min if !has[c] || w < s[c] => w,
                        Agg::Max if !has[c] || w > s[c] => w,
                        _ => s[c],
                    };
                    has[c] = true;
                }
            }
            if self.agg == Agg::Average {
                let k = self.roots.len() as i128;
                for v in s.iter_mut() {
                    *v = div_round(*v as i128, k).unwrap_or(0) as i64;
                }
            }
            for (v, b) in s.iter_mut().zip(&self.base) {
                *v = v.checked_add(*b).ok_or_else(|| overflow("leaf sum"))?;
            }
            if let Some(b) = self.binary {
                let v = s[b];
                s[1] = v;
                s[0] = if self.post == Post::None { one - v } else { -v };
            }
            let mut best = 0;
            for (i, v) in s.iter().enumerate() {
                if *v > s[best] {
                    best = i;
                }
            }
            if let Some(l) = &self.labels {
                labels.push(l[best]);
            }
            for v in &s {
                let q = round_shift(*v as i128, ACC_EXTRA).ok_or_else(|| overflow("score"))?;
                scores.push(i64::try_from(q).map_err(|_| overflow("score (int64)"))?);
            }
        }
        let apply_post = self.labels.is_some() || t > 1;
        let scores = XT::i64(vec![n, t], scores);
        let scores = match self.post {
            Post::None => scores,
            _ if !apply_post => scores,
            Post::Softmax => softmax(1, self.fo, self.fo, &scores)?,
            Post::Logistic => {
                let tab = funcs::table(Func::Sigmoid, self.fo)?;
                super::ops::table(&tab, self.fo, &scores)?
            }
        };
        Ok(match &self.labels {
            Some(_) => vec![XT::i64(vec![n], labels), scores],
            None => vec![scores],
        })
    }
}
