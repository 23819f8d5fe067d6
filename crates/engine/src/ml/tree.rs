//! `TreeEnsembleClassifier` and `TreeEnsembleRegressor` (ai.onnx.ml 1 and 3),
//! with every id from the model checked when it is loaded.
//!
//! Semantics (ONNX-ML spec and reference implementation):
//! - a branch goes to its true child when `x <mode> value` holds, or when `x`
//!   is NaN and `nodes_missing_value_tracks_true` is set (onnxruntime's rule:
//!   for `BRANCH_NEQ` a NaN always goes true);
//! - the classifier sums leaf weights per class, adds `base_values`, applies
//!   `post_transform`, and labels with the first maximal score. With two
//!   classes of which only one receives weights (the "binary" layout), the
//!   scores are `[1 - s, s]` (NONE, PROBIT) or `[-s, s]` (others) before the
//!   transform, `s` being the weighted class's score;
//! - the regressor aggregates per target with SUM, AVERAGE (sum divided by
//!   the number of trees), MIN or MAX (a target no leaf voted for is 0), adds
//!   `base_values`, then applies `post_transform`; with one target only
//!   PROBIT is applied (as onnxruntime does).
//!
//! Thresholds, weights and sums are kept in f64 (exact for float attributes
//! and for the `_as_tensor` double variants); scores are returned as float32.

use super::{built, floats_attr, rows_dim, Kernel, PostTransform, Rows};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tract_onnx::model::ParsingContext;
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;

type Built = TractResult<(Box<dyn InferenceOp>, Vec<String>)>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Leaf,
    Leq,
    Lt,
    Gte,
    Gt,
    Eq,
    Neq,
}

fn parse_mode(s: &str) -> TractResult<Mode> {
    Ok(match s {
        "LEAF" => Mode::Leaf,
        "BRANCH_LEQ" => Mode::Leq,
        "BRANCH_LT" => Mode::Lt,
        "BRANCH_GTE" => Mode::Gte,
        "BRANCH_GT" => Mode::Gt,
        "BRANCH_EQ" => Mode::Eq,
        "BRANCH_NEQ" => Mode::Neq,
        other => bail!("unknown node mode `{other}`"),
    })
}

#[derive(Clone, Debug)]
struct Node {
    mode: Mode,
    feature: usize,
    value: f64,
    yes: usize,
    no: usize,
    nan_yes: bool,
    /// Range of this node's votes in `Ensemble::votes`.
    votes: (usize, usize),
}

/// How a regressor combines the votes of the trees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Aggregate {
    Sum,
    Average,
    Min,
    Max,
}

/// Checked trees: every child and vote refers to an existing node of the
/// same tree, no tree has a cycle, vote targets are below `n_targets`.
#[derive(Clone, Debug)]
pub(crate) struct Ensemble {
    nodes: Vec<Node>,
    roots: Vec<usize>,
    votes: Vec<(usize, f64)>,
    n_targets: usize,
    /// One more than the largest feature index a branch reads.
    n_features: usize,
}

impl Ensemble {
    fn parse(
        ctx: &ParsingContext,
        node: &NodeProto,
        prefix: &str,
        n_targets: usize,
    ) -> TractResult<Self> {
        let ints = |name: &str| -> TractResult<Vec<i64>> {
            Ok(node
                .get_attr_opt_slice::<i64>(name)?
                .map(<[i64]>::to_vec)
                .unwrap_or_default())
        };
        let tree_ids = ints("nodes_treeids")?;
        let node_ids = ints("nodes_nodeids")?;
        let features = ints("nodes_featureids")?;
        let trues = ints("nodes_truenodeids")?;
        let falses = ints("nodes_falsenodeids")?;
        let missing = ints("nodes_missing_value_tracks_true")?;
        let modes = node
            .get_attr_opt_tvec::<&str>("nodes_modes")?
            .map(|v| v.into_vec())
            .unwrap_or_default();
        let values = floats_attr(ctx, node, "nodes_values")?.unwrap_or_default();
        let n = tree_ids.len();
        ensure!(n > 0, "the ensemble has no nodes (nodes_treeids is empty)");
        for (name, len) in [
            ("nodes_nodeids", node_ids.len()),
            ("nodes_featureids", features.len()),
            ("nodes_truenodeids", trues.len()),
            ("nodes_falsenodeids", falses.len()),
            ("nodes_modes", modes.len()),
            ("nodes_values", values.len()),
        ] {
            ensure!(len == n, "{name} has {len} values, nodes_treeids has {n}");
        }
        ensure!(
            missing.is_empty() || missing.len() == n,
            "nodes_missing_value_tracks_true has {} values, nodes_treeids has {n}",
            missing.len()
        );
        let mut index: HashMap<(i64, i64), usize> = HashMap::with_capacity(n);
        let mut trees = HashSet::new();
        let mut roots = vec![];
        for i in 0..n {
            let id = (tree_ids[i], node_ids[i]);
            ensure!(
                index.insert(id, i).is_none(),
                "node {} of tree {} is defined twice",
                id.1,
                id.0
            );
            if trees.insert(tree_ids[i]) {
                roots.push(i);
            }
        }
        let mut nodes = Vec::with_capacity(n);
        let mut n_features = 0;
        for i in 0..n {
            let mode = parse_mode(modes[i])?;
            let here = || format!("node {} of tree {}", node_ids[i], tree_ids[i]);
            let (yes, no, feature) = if mode == Mode::Leaf {
                (i, i, 0)
            } else {
                let find = |id: i64, which: &str| {
                    index
                        .get(&(tree_ids[i], id))
                        .copied()
                        .ok_or_else(|| format_err!("{}: {which} node {id} does not exist", here()))
                };
                let yes = find(trues[i], "true")?;
                let no = find(falses[i], "false")?;
                ensure!(yes != i && no != i, "{}: points to itself", here());
                let feature = usize::try_from(features[i])
                    .map_err(|_| format_err!("{}: negative feature id", here()))?;
                n_features = n_features.max(feature.saturating_add(1));
                (yes, no, feature)
            };
            nodes.push(Node {
                mode,
                feature,
                value: values[i],
                yes,
                no,
                nan_yes: missing.get(i).is_some_and(|m| *m != 0),
                votes: (0, 0),
            });
        }
        let v_trees = ints(&format!("{prefix}_treeids"))?;
        let v_nodes = ints(&format!("{prefix}_nodeids"))?;
        let v_ids = ints(&format!("{prefix}_ids"))?;
        let v_weights = floats_attr(ctx, node, &format!("{prefix}_weights"))?.unwrap_or_default();
        let m = v_ids.len();
        for (name, len) in [
            ("treeids", v_trees.len()),
            ("nodeids", v_nodes.len()),
            ("weights", v_weights.len()),
        ] {
            ensure!(
                len == m,
                "{prefix}_{name} has {len} values, {prefix}_ids has {m}"
            );
        }
        let mut per_node: Vec<Vec<(usize, f64)>> = vec![vec![]; n];
        for j in 0..m {
            let i = *index.get(&(v_trees[j], v_nodes[j])).ok_or_else(|| {
                format_err!(
                    "{prefix} weight {j}: node {} of tree {} does not exist",
                    v_nodes[j],
                    v_trees[j]
                )
            })?;
            let target = usize::try_from(v_ids[j])
                .ok()
                .filter(|t| *t < n_targets)
                .ok_or_else(|| {
                    format_err!(
                        "{prefix}_ids[{j}] = {} is out of range (0..{n_targets})",
                        v_ids[j]
                    )
                })?;
            per_node[i].push((target, v_weights[j]));
        }
        let mut votes = Vec::with_capacity(m);
        for (node, v) in nodes.iter_mut().zip(per_node) {
            node.votes = (votes.len(), votes.len() + v.len());
            votes.extend(v);
        }
        let ens = Ensemble {
            nodes,
            roots,
            votes,
            n_targets,
            n_features,
        };
        ens.check_acyclic()?;
        Ok(ens)
    }

    /// Depth-first search from every root; a node met again while on the
    /// current path is a cycle.
    fn check_acyclic(&self) -> TractResult<()> {
        let mut color = vec![0u8; self.nodes.len()]; // 0 new, 1 on path, 2 done
        for &root in &self.roots {
            if color[root] == 2 {
                continue;
            }
            color[root] = 1;
            let mut stack = vec![(root, 0u8)];
            while let Some(&(i, k)) = stack.last() {
                let node = &self.nodes[i];
                if node.mode == Mode::Leaf || k >= 2 {
                    color[i] = 2;
                    stack.pop();
                    continue;
                }
                if let Some(top) = stack.last_mut() {
                    top.1 += 1;
                }
                let child = if k == 0 { node.yes } else { node.no };
                match color[child] {
                    0 => {
                        color[child] = 1;
                        stack.push((child, 0));
                    }
                    1 => bail!("the trees contain a cycle"),
                    _ => {}
                }
            }
        }
        Ok(())
    }

    fn n_trees(&self) -> usize {
        self.roots.len()
    }

    /// Distinct vote targets.
    fn targets_used(&self) -> HashSet<usize> {
        self.votes.iter().map(|(t, _)| *t).collect()
    }

    fn leaf(&self, root: usize, row: &[f64]) -> &Node {
        let mut node = &self.nodes[root];
        while node.mode != Mode::Leaf {
            let x = row[node.feature];
            let v = node.value;
            let cond = match node.mode {
                Mode::Leq => x <= v,
                Mode::Lt => x < v,
                Mode::Gte => x >= v,
                Mode::Gt => x > v,
                Mode::Eq => x == v,
                Mode::Neq => x != v,
                Mode::Leaf => true,
            } || (node.nan_yes && x.is_nan());
            node = &self.nodes[if cond { node.yes } else { node.no }];
        }
        node
    }

    /// Aggregated votes per row and target, and whether any vote arrived.
    fn aggregate(&self, rows: &Rows, agg: Aggregate) -> TractResult<(Vec<f64>, Vec<bool>)> {
        ensure!(
            rows.f >= self.n_features,
            "input has {} features, the tree ensemble reads feature #{}",
            rows.f,
            self.n_features.saturating_sub(1)
        );
        let t = self.n_targets;
        let len = rows.n.checked_mul(t).context("output too large")?;
        let mut score = vec![0f64; len];
        let mut has = vec![false; len];
        for r in 0..rows.n {
            let row = rows.row(r);
            let s = &mut score[r * t..(r + 1) * t];
            let h = &mut has[r * t..(r + 1) * t];
            for &root in &self.roots {
                let (a, b) = self.leaf(root, row).votes;
                for &(c, w) in &self.votes[a..b] {
                    match agg {
                        Aggregate::Sum | Aggregate::Average => s[c] += w,
                        Aggregate::Min if !h[c] || w < s[c] => s[c] = w,
                        Aggregate::Max if !h[c] || w > s[c] => s[c] = w,
                        _ => {}
                    }
                    h[c] = true;
                }
            }
        }
        Ok((score, has))
    }
}

fn base_values(
    ctx: &ParsingContext,
    node: &NodeProto,
    n: usize,
    what: &str,
) -> TractResult<Option<Vec<f64>>> {
    let base = floats_attr(ctx, node, "base_values")?;
    if let Some(b) = &base {
        ensure!(
            b.is_empty() || b.len() == n,
            "base_values has {} values for {n} {what}",
            b.len()
        );
    }
    Ok(base.filter(|b| !b.is_empty()))
}

/// ai.onnx.ml `TreeEnsembleClassifier`: X `[N, F]` → (labels `[N]`, scores `[N, C]`).
#[derive(Debug)]
pub(crate) struct Classifier {
    ens: Ensemble,
    labels: Arc<Tensor>,
    base: Option<Vec<f64>>,
    post: PostTransform,
    /// The only class receiving votes, when there are two classes.
    binary: Option<usize>,
}

impl Classifier {
    pub(crate) fn parse(ctx: &ParsingContext, node: &NodeProto) -> TractResult<Self> {
        let ints = node.get_attr_opt_slice::<i64>("classlabels_int64s")?;
        let strs = node.get_attr_opt_tvec::<String>("classlabels_strings")?;
        let labels = match (ints, strs) {
            (Some(i), None) if !i.is_empty() => rctensor1(i),
            (None, Some(s)) if !s.is_empty() => rctensor1(&s),
            _ => bail!("exactly one of classlabels_int64s and classlabels_strings must be set"),
        };
        let n_classes = labels.len();
        let ens = Ensemble::parse(ctx, node, "class", n_classes)?;
        let used = ens.targets_used();
        let binary = (n_classes == 2 && used.len() == 1)
            .then(|| used.into_iter().next())
            .flatten();
        Ok(Self {
            base: base_values(ctx, node, n_classes, "classes")?,
            post: PostTransform::parse(node.get_attr_opt::<&str>("post_transform")?)?,
            ens,
            labels,
            binary,
        })
    }

    fn n_classes(&self) -> usize {
        self.labels.len()
    }
}

impl Kernel for Classifier {
    fn name(&self) -> &'static str {
        "TreeEnsembleClassifier"
    }

    fn n_outputs(&self) -> usize {
        2
    }

    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        check_input_arity(inputs, 1)?;
        check_output_arity(outputs, 2)?;
        s.equals(&outputs[0].datum_type, self.labels.datum_type())?;
        s.equals(&outputs[1].datum_type, f32::datum_type())?;
        s.equals(&outputs[0].rank, 1)?;
        s.equals(&outputs[1].rank, 2)?;
        s.equals(&outputs[1].shape[1], self.n_classes().to_dim())?;
        s.equals(&outputs[0].shape[0], &outputs[1].shape[0])?;
        rows_rule(s, inputs, &outputs[0])
    }

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let n = rows_dim(inputs[0])?;
        Ok(tvec!(
            self.labels.datum_type().fact([n.clone()]),
            f32::fact([n, self.n_classes().to_dim()])
        ))
    }

    fn eval(&self, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let rows = Rows::of(&inputs[0])?;
        let (score, _) = self.ens.aggregate(&rows, Aggregate::Sum)?;
        let c = self.n_classes();
        let mut scores = Vec::with_capacity(score.len());
        let mut winners = Vec::with_capacity(rows.n);
        for r in 0..rows.n {
            let mut row = score[r * c..(r + 1) * c].to_vec();
            if let Some(base) = &self.base {
                row.iter_mut().zip(base).for_each(|(s, b)| *s += b);
            }
            if let Some(b) = self.binary {
                let s = row[b];
                row[1] = s;
                row[0] = match self.post {
                    PostTransform::None | PostTransform::Probit => 1.0 - s,
                    _ => -s,
                };
            }
            self.post.apply(&mut row);
            winners.push(argmax(&row));
            scores.extend(row.iter().map(|v| *v as f32));
        }
        let labels = pick_labels(&self.labels, &winners)?;
        let scores = Tensor::from_shape(&[rows.n, c], &scores)?;
        Ok(tvec!(labels.into_tvalue(), scores.into_tvalue()))
    }
}

/// Output 0's first dimension is the number of input rows.
fn rows_rule<'r, 'p: 'r>(
    s: &mut Solver<'r>,
    inputs: &'p [TensorProxy],
    out: &'p TensorProxy,
) -> InferenceResult {
    s.given(&inputs[0].rank, move |s, rank| {
        match rank {
            1 => s.equals(&out.shape[0], 1.to_dim())?,
            2 => s.equals(&out.shape[0], &inputs[0].shape[0])?,
            r => bail!("expected a rank 1 or 2 input, got rank {r}"),
        }
        Ok(())
    })
}

/// Index of the first maximum (0 when all are NaN).
fn argmax(row: &[f64]) -> usize {
    let mut best = 0;
    for (i, v) in row.iter().enumerate() {
        if *v > row[best] || (row[best].is_nan() && !v.is_nan()) {
            best = i;
        }
    }
    best
}

fn pick_labels(labels: &Tensor, winners: &[usize]) -> TractResult<Tensor> {
    let plain = labels.try_as_plain_ram()?;
    if labels.datum_type() == String::datum_type() {
        let l = plain.as_slice::<String>()?;
        let v: Vec<String> = winners.iter().map(|w| l[*w].clone()).collect();
        Ok(tract_ndarray::Array1::from_vec(v).into_tensor())
    } else {
        let l = plain.as_slice::<i64>()?;
        let v: Vec<i64> = winners.iter().map(|w| l[*w]).collect();
        Tensor::from_shape(&[v.len()], &v)
    }
}

/// ai.onnx.ml `TreeEnsembleRegressor`: X `[N, F]` → Y `[N, n_targets]`.
#[derive(Debug)]
pub(crate) struct Regressor {
    ens: Ensemble,
    base: Option<Vec<f64>>,
    agg: Aggregate,
    post: PostTransform,
}

impl Regressor {
    /// Most targets accepted (outputs are `[N, n_targets]`).
    const MAX_TARGETS: i64 = 1 << 20;

    pub(crate) fn parse(ctx: &ParsingContext, node: &NodeProto) -> TractResult<Self> {
        let n_targets = node.get_attr_opt::<i64>("n_targets")?.unwrap_or(1);
        ensure!(
            (1..=Self::MAX_TARGETS).contains(&n_targets),
            "n_targets = {n_targets} is out of range"
        );
        let n_targets = n_targets as usize;
        let agg = match node
            .get_attr_opt::<&str>("aggregate_function")?
            .unwrap_or("SUM")
        {
            "SUM" => Aggregate::Sum,
            "AVERAGE" => Aggregate::Average,
            "MIN" => Aggregate::Min,
            "MAX" => Aggregate::Max,
            other => bail!("unknown aggregate_function `{other}`"),
        };
        Ok(Self {
            ens: Ensemble::parse(ctx, node, "target", n_targets)?,
            base: base_values(ctx, node, n_targets, "targets")?,
            agg,
            post: PostTransform::parse(node.get_attr_opt::<&str>("post_transform")?)?,
        })
    }
}

impl Kernel for Regressor {
    fn name(&self) -> &'static str {
        "TreeEnsembleRegressor"
    }

    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        check_input_arity(inputs, 1)?;
        check_output_arity(outputs, 1)?;
        s.equals(&outputs[0].datum_type, f32::datum_type())?;
        s.equals(&outputs[0].rank, 2)?;
        s.equals(&outputs[0].shape[1], self.ens.n_targets.to_dim())?;
        rows_rule(s, inputs, &outputs[0])
    }

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let n = rows_dim(inputs[0])?;
        Ok(tvec!(f32::fact([n, self.ens.n_targets.to_dim()])))
    }

    fn eval(&self, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let rows = Rows::of(&inputs[0])?;
        let (score, has) = self.ens.aggregate(&rows, self.agg)?;
        let t = self.ens.n_targets;
        let n_trees = self.ens.n_trees() as f64;
        let mut out = Vec::with_capacity(score.len());
        for r in 0..rows.n {
            let mut row: Vec<f64> = (r * t..(r + 1) * t)
                .map(|i| match self.agg {
                    Aggregate::Sum => score[i],
                    Aggregate::Average => score[i] / n_trees,
                    Aggregate::Min | Aggregate::Max if has[i] => score[i],
                    _ => 0.0,
                })
                .collect();
            if let Some(base) = &self.base {
                row.iter_mut().zip(base).for_each(|(s, b)| *s += b);
            }
            if t > 1 || self.post == PostTransform::Probit {
                self.post.apply(&mut row);
            }
            out.extend(row.iter().map(|v| *v as f32));
        }
        Ok(tvec!(Tensor::from_shape(&[rows.n, t], &out)?.into_tvalue()))
    }
}

pub(crate) fn classifier(ctx: &ParsingContext, node: &NodeProto) -> Built {
    built(Classifier::parse(ctx, node)?)
}

pub(crate) fn regressor(ctx: &ParsingContext, node: &NodeProto) -> Built {
    built(Regressor::parse(ctx, node)?)
}

#[cfg(test)]
#[path = "tree_tests.rs"]
mod tests;
