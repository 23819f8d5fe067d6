//! Lowering of the linear and neural-network operators: EinSum (MatMul,
//! Gemm), Conv, pools, reductions, Softmax, tree ensembles.

use super::compile::{is_float, Compiler, CR};
use super::conv::{ConvPlan, Geo, PoolPlan};
use super::ir::{Kind, Red, Ty};
use super::linalg::{permute, ConstOpnd, MatMulPlan};
use super::tree::TreePlan;
use crate::EngineError;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops;
use tract_onnx::tract_core::ops::cnn::{KernelFormat, PoolSpec};
use tract_onnx::tract_core::ops::nn::DataFormat;

/// An einsum axis: position in A, in B, in C (absent where its size is 1), size.
type Ax = (Option<usize>, Option<usize>, Option<usize>, usize);

impl Compiler<'_> {
    /// Lowers the operators of this module; `false` when `node` is none of them.
    pub(crate) fn lower_nn(&mut self, node: &TypedNode) -> CR<bool> {
        if let Some(op) = node.op_as::<ops::einsum::EinSum>() {
            self.einsum(node, op)?;
        } else if let Some(op) = node.op_as::<ops::cnn::Conv>() {
            self.conv(node, op)?;
        } else if let Some(op) = node.op_as::<ops::cnn::Deconv>() {
            self.deconv(node, op)?;
        } else if let Some(op) = node.op_as::<ops::cnn::MaxPool>() {
            if op.with_index_outputs.is_some() {
                return Err(self.unsupported(node, "MaxPool with indices"));
            }
            self.pool(node, &op.pool_spec, true, false, false)?;
        } else if let Some(op) = node.op_as::<ops::cnn::SumPool>() {
            self.pool(
                node,
                &op.pool_spec,
                false,
                op.normalize,
                op.count_include_pad,
            )?;
        } else if let Some(op) = node.op_as::<ops::nn::Reduce>() {
            self.reduce(node, op)?;
        } else if let Some(op) = node.op_as::<ops::nn::Softmax>() {
            self.softmax(node, op)?;
        } else if let Some(op) = node.op_as::<ops::scan::Scan>() {
            self.scan(node, op)?;
        } else if let Some(op) = node.op_as::<ops::lstm_cell::LstmEpilogue>() {
            self.lstm_epilogue(node, op.hidden)?;
        } else {
            return Ok(false);
        }
        Ok(true)
    }

    pub(crate) fn in_shape(&self, node: &TypedNode, i: usize) -> CR<Vec<usize>> {
        let o = node.inputs[i];
        match self.konst(o) {
            Some(t) => Ok(t.shape().to_vec()),
            None => match self.vals.get(&o) {
                Some(super::compile::CVal::Dyn(s)) => Ok(self.shape(*s)),
                _ => Err(EngineError::Execution(format!(
                    "exact: node `{}`: missing input",
                    node.name
                ))),
            },
        }
    }

    fn einsum(&mut self, node: &TypedNode, op: &ops::einsum::EinSum) -> CR<()> {
        if op.q_params.is_some() || node.inputs.len() != 2 || !is_float(op.operating_dt) {
            return Err(self.unsupported(node, "quantized or non-binary einsum"));
        }
        let f = self.f();
        let sa = self.in_shape(node, 0)?;
        let sb = self.in_shape(node, 1)?;
        let sc = Self::out_shape(node, 0)?;
        // Per axis: position in A, B, C, counted as absent where its size is 1.
        let mut axes = vec![];
        for ax in op.axes.iter_all_axes() {
            if ax.inputs[0].len() > 1 || ax.inputs[1].len() > 1 || ax.outputs[0].len() > 1 {
                return Err(self.unsupported(node, "einsum with a repeated axis"));
            }
            let pa = ax.inputs[0].first().copied().filter(|p| sa[*p] > 1);
            let pb = ax.inputs[1].first().copied().filter(|p| sb[*p] > 1);
            let pc = ax.outputs[0].first().copied().filter(|p| sc[*p] > 1);
            let size = pa
                .map(|p| sa[p])
                .or(pb.map(|p| sb[p]))
                .or(pc.map(|p| sc[p]))
                .unwrap_or(1);
            if size > 1 {
                axes.push((pa, pb, pc, size));
            }
        }
        let pick =
            |f: &dyn Fn(&Ax) -> bool| -> Vec<_> { axes.iter().filter(|a| f(a)).copied().collect() };
        let batch = pick(&|a| a.0.is_some() && a.1.is_some() && a.2.is_some());
        let m = pick(&|a| a.0.is_some() && a.1.is_none() && a.2.is_some());
        let n = pick(&|a| a.0.is_none() && a.1.is_some() && a.2.is_some());
        let k = pick(&|a| a.0.is_some() && a.1.is_some() && a.2.is_none());
        if batch.len() + m.len() + n.len() + k.len() != axes.len() {
            return Err(self.unsupported(node, "einsum summing an axis of one operand only"));
        }
        // Squeezed shapes (size-1 axes dropped) and positions in them.
        let sq = |shape: &[usize]| shape.iter().copied().filter(|d| *d > 1).collect::<Vec<_>>();
        let at = |shape: &[usize], p: usize| shape[..p].iter().filter(|d| **d > 1).count();
        let (a_shape, b_shape, c_shape_out) = (sq(&sa), sq(&sb), sq(&sc));
        let a_perm: Vec<usize> = batch
            .iter()
            .chain(&m)
            .chain(&k)
            .filter_map(|x| x.0.map(|p| at(&sa, p)))
            .collect();
        let b_perm: Vec<usize> = batch
            .iter()
            .chain(&k)
            .chain(&n)
            .filter_map(|x| x.1.map(|p| at(&sb, p)))
            .collect();
        let c_at =
            |x: &(Option<usize>, Option<usize>, Option<usize>, usize)| x.2.map(|p| at(&sc, p));
        let c_axes: Vec<_> = batch.iter().chain(&m).chain(&n).copied().collect();
        let c_shape: Vec<usize> = c_axes.iter().map(|a| a.3).collect();
        // Output (squeezed) axis j is c_axes[c_perm[j]].
        let mut c_perm = vec![0; c_axes.len()];
        for (i, a) in c_axes.iter().enumerate() {
            let j = c_at(a).unwrap_or(0);
            if j < c_perm.len() {
                c_perm[j] = i;
            }
        }
        if c_shape_out.iter().product::<usize>() != c_shape.iter().product::<usize>() {
            return Err(self.unsupported(node, "einsum output layout"));
        }
        let prod = |v: &[Ax]| v.iter().map(|a| a.3).product::<usize>();
        let (a, b) = (node.inputs[0], node.inputs[1]);
        let mut inputs = vec![];
        let (mut fa, mut fb) = (f, f);
        let a_const = match self.konst(a) {
            Some(t) => {
                let (q, fw) = self.weight(&t)?;
                fa = fw;
                Some(permute(&Self::narrow(&q)?, &a_shape, &a_perm))
            }
            None => {
                inputs.push(self.fixed(node, a)?);
                None
            }
        };
        let b_const = match self.konst(b) {
            Some(t) => {
                let (q, fw) = self.weight(&t)?;
                fb = fw;
                Some(permute(&Self::narrow(&q)?, &b_shape, &b_perm))
            }
            None => {
                inputs.push(self.fixed(node, b)?);
                None
            }
        };
        let (kk, nn, bt) = (prod(&k), prod(&n), prod(&batch));
        let a_const = a_const.map(|a| {
            let l1 = a
                .chunks(kk.max(1))
                .map(|r| r.iter().map(|v| (*v as i128).abs()).sum::<i128>())
                .max()
                .unwrap_or(0);
            ConstOpnd::new(a, l1)
        });
        let b_const = b_const.map(|b| {
            let mut best = 0i128;
            for bi in 0..bt {
                for j in 0..nn {
                    let s: i128 = (0..kk)
                        .map(|x| (b[(bi * kk + x) * nn + j] as i128).abs())
                        .sum();
                    best = best.max(s);
                }
            }
            ConstOpnd::new(b, best)
        });
        let plan = MatMulPlan {
            a_shape,
            a_perm,
            b_shape,
            b_perm,
            a_batch: prod(&batch),
            b_batch: prod(&batch),
            batch: prod(&batch),
            m: prod(&m),
            k: prod(&k),
            n: prod(&n),
            a_const,
            b_const,
            c_shape,
            c_perm,
            out_shape: sc.clone(),
            shift: fa + fb - f,
        };
        let o = self.emit(node, Kind::MatMul(Box::new(plan)), inputs, sc, Ty::Fixed(f));
        self.set(node, 0, o);
        Ok(())
    }

    /// Geometry from a pool spec and an input shape.
    pub(crate) fn geo(
        &self,
        node: &TypedNode,
        spec: &PoolSpec,
        shape: &[usize],
        out: &[usize],
    ) -> CR<Geo> {
        let (has_n, channels_last) = match spec.data_format {
            DataFormat::NCHW => (true, false),
            DataFormat::NHWC => (true, true),
            DataFormat::CHW => (false, false),
            DataFormat::HWC => (false, true),
        };
        let r = spec.kernel_shape.len();
        if r == 0 || r > 2 || shape.len() != r + 1 + has_n as usize {
            return Err(self.unsupported(node, &format!("{r}-D convolution or pool")));
        }
        let n = if has_n { shape[0] } else { 1 };
        let sp_at = if channels_last {
            has_n as usize
        } else {
            has_n as usize + 1
        };
        let c = if channels_last {
            shape[shape.len() - 1]
        } else {
            shape[has_n as usize]
        };
        let isp = &shape[sp_at..sp_at + r];
        let osp = &out[sp_at..sp_at + r];
        let pads = spec.computed_padding(isp);
        let (st, dl) = (spec.strides(), spec.dilations());
        let two = |v: &[usize], d: usize| if r == 2 { (v[0], v[1]) } else { (d, v[0]) };
        let (ih, iw) = two(isp, 1);
        let (oh, ow) = two(osp, 1);
        let (kh, kw) = two(&spec.kernel_shape, 1);
        let (sh, sw) = two(&st, 1);
        let (dh, dw) = two(&dl, 1);
        let pb: Vec<usize> = pads.iter().map(|p| p.pad_before).collect();
        let ext: Vec<usize> = pads
            .iter()
            .zip(isp)
            .map(|(p, i)| p.pad_before + i + p.pad_after)
            .collect();
        let (ph, pw) = two(&pb, 0);
        let (eh, ew) = two(&ext, 1);
        Ok(Geo {
            n,
            c,
            ih,
            iw,
            oh,
            ow,
            kh,
            kw,
            sh,
            sw,
            dh,
            dw,
            ph,
            pw,
            eh,
            ew,
            channels_last,
        })
    }

    fn conv(&mut self, node: &TypedNode, op: &ops::cnn::Conv) -> CR<()> {
        if op.q_params.is_some() {
            return Err(self.unsupported(node, "quantized convolution"));
        }
        let f = self.f();
        let shape = self.in_shape(node, 0)?;
        let out = Self::out_shape(node, 0)?;
        let geo = self.geo(node, &op.pool_spec, &shape, &out)?;
        let Some(kernel) = self.konst(node.inputs[1]) else {
            return Err(self.unsupported(node, "convolution with a non-constant kernel"));
        };
        let bias = match node.inputs.get(2) {
            Some(b) => match self.konst(*b) {
                Some(t) => Some(t),
                None => return Err(self.unsupported(node, "convolution with a non-constant bias")),
            },
            None => None,
        };
        let cout = op.pool_spec.output_channels;
        let g = op.group;
        // Kernel to [O, I/g, H, W].
        let ks = kernel.shape().to_vec();
        let r = op.pool_spec.kernel_shape.len();
        let perm: Vec<usize> = match op.kernel_fmt {
            KernelFormat::OIHW => (0..r + 2).collect(),
            KernelFormat::HWIO => std::iter::once(r + 1)
                .chain(std::iter::once(r))
                .chain(0..r)
                .collect(),
            KernelFormat::OHWI => std::iter::once(0)
                .chain(std::iter::once(r + 1))
                .chain(1..r + 1)
                .collect(),
        };
        let kf = permute(&Self::f64s(&kernel)?, &ks, &perm);
        let kk = geo.c / g * geo.kh * geo.kw;
        if g == 0 || kf.len() != cout * kk || !geo.c.is_multiple_of(g) || !cout.is_multiple_of(g) {
            return Err(self.unsupported(node, "kernel shape does not match the channels"));
        }
        let bias = match bias {
            Some(b) => {
                let v = Self::f64s(&b)?;
                let v: Vec<f64> = if v.len() == 1 { vec![v[0]; cout] } else { v };
                if v.len() != cout {
                    return Err(self.unsupported(node, "bias length"));
                }
                v
            }
            None => vec![0.0; cout],
        };
        let x = self.fixed(node, node.inputs[0])?;
        let mut plan = ConvPlan {
            geo,
            cout,
            group: g,
            kernel: kf,
            bias_f: bias,
            w: vec![],
            wf: vec![],
            bias: vec![],
            w_l1: 0,
            w_max: 0,
            shift: 0,
            out_shape: out.clone(),
        };
        plan.quantize(f, self.p.weight_bits as u32)
            .map_err(|e| EngineError::InvalidModel(format!("exact: node `{}`: {e}", node.name)))?;
        let o = self.emit(node, Kind::Conv(Box::new(plan)), vec![x], out, Ty::Fixed(f));
        self.set(node, 0, o);
        // The output may absorb a following per-channel Mul and Add (§3.5).
        let channel_axis = match op.pool_spec.data_format {
            DataFormat::NCHW => 1,
            DataFormat::CHW => 0,
            DataFormat::NHWC | DataFormat::HWC => shape.len() - 1,
        };
        if node.outputs[0].successors.len() == 1 {
            self.foldable.insert(
                OutletId::new(node.id, 0),
                (self.plan.steps.len() - 1, channel_axis),
            );
        }
        Ok(())
    }

    /// Folds `conv(x) * c` or `conv(x) + c` (a constant with one value per
    /// output channel, or one value) into the convolution that computes the
    /// other operand, when that convolution's output has no other consumer.
    /// Returns whether it did.
    pub(crate) fn try_fold(&mut self, node: &TypedNode, mul: bool) -> CR<bool> {
        let (a, b) = (node.inputs[0], node.inputs[1]);
        let (src, c) = match (
            self.foldable.get(&a).copied(),
            self.konst(b),
            self.foldable.get(&b).copied(),
            self.konst(a),
        ) {
            (Some(fa), Some(c), _, _) => ((a, fa), c),
            (_, _, Some(fb), Some(c)) => ((b, fb), c),
            _ => return Ok(false),
        };
        let ((outlet, (step, axis)), f) = (src, self.f());
        let Kind::Conv(plan) = &mut self.plan.steps[step].kind else {
            return Ok(false);
        };
        let rank = plan.out_shape.len();
        let cs = c.shape().to_vec();
        if cs.len() > rank || !is_float(c.datum_type()) {
            return Ok(false);
        }
        // The constant's axes aligned to the output's, right-justified.
        let per_channel = cs
            .iter()
            .enumerate()
            .all(|(i, d)| *d == 1 || i + rank - cs.len() == axis);
        let cv = Self::f64s(&c)?;
        if !per_channel || !(cv.len() == 1 || cv.len() == plan.cout) {
            return Ok(false);
        }
        let at = |o: usize| if cv.len() == 1 { cv[0] } else { cv[o] };
        let kk = plan.kernel.len() / plan.cout;
        for o in 0..plan.cout {
            if mul {
                for w in &mut plan.kernel[o * kk..(o + 1) * kk] {
                    *w *= at(o);
                }
                plan.bias_f[o] *= at(o);
            } else {
                plan.bias_f[o] += at(o);
            }
        }
        plan.quantize(f, self.p.weight_bits as u32)
            .map_err(|e| EngineError::InvalidModel(format!("exact: node `{}`: {e}", node.name)))?;
        let slot = self.plan.steps[step].outputs[0];
        self.set(node, 0, slot);
        self.foldable.remove(&outlet);
        if node.outputs[0].successors.len() == 1 {
            self.foldable
                .insert(OutletId::new(node.id, 0), (step, axis));
        }
        Ok(true)
    }

    fn pool(
        &mut self,
        node: &TypedNode,
        spec: &PoolSpec,
        max: bool,
        normalize: bool,
        cip: bool,
    ) -> CR<()> {
        let f = self.f();
        let shape = self.in_shape(node, 0)?;
        let out = Self::out_shape(node, 0)?;
        let geo = self.geo(node, spec, &shape, &out)?;
        let x = self.fixed(node, node.inputs[0])?;
        let plan = PoolPlan {
            geo,
            max,
            normalize,
            count_include_pad: cip,
            out_shape: out.clone(),
        };
        let o = self.emit(node, Kind::Pool(Box::new(plan)), vec![x], out, Ty::Fixed(f));
        self.set(node, 0, o);
        Ok(())
    }

    fn reduce(&mut self, node: &TypedNode, op: &ops::nn::Reduce) -> CR<()> {
        use ops::nn::Reducer;
        if !self.is_float_value(node.inputs[0]) {
            return self.lower_int_reduce(node);
        }
        let f = self.f();
        let red = match op.reducer {
            Reducer::Sum => Red::Sum,
            Reducer::Max => Red::Max,
            Reducer::Min => Red::Min,
            Reducer::Prod => Red::Prod { shift: f },
            Reducer::MeanOfSquares => Red::MeanOfSquares { shift: f },
            Reducer::ArgMax(last) => Red::ArgMax { last },
            Reducer::ArgMin(last) => Red::ArgMin { last },
            _ => return Err(self.unsupported(node, "reducer")),
        };
        let ty = match red {
            Red::ArgMax { .. } | Red::ArgMin { .. } => Ty::Int(DatumType::I64),
            _ => Ty::Fixed(f),
        };
        let x = self.fixed(node, node.inputs[0])?;
        let o = self.emit(
            node,
            Kind::Reduce {
                axes: op.axes.to_vec(),
                red,
            },
            vec![x],
            Self::out_shape(node, 0)?,
            ty,
        );
        self.set(node, 0, o);
        Ok(())
    }

    fn lower_int_reduce(&mut self, node: &TypedNode) -> CR<()> {
        // Integer reductions are exact; tract evaluates them.
        let ty = self.ty_of(node.outputs[0].fact.datum_type);
        let i = node.inputs[0];
        let in_ty = match self.vals.get(&i) {
            Some(super::compile::CVal::Dyn(s)) => self.ty(*s),
            _ => Ty::Int(DatumType::I64),
        };
        let x = self.as_ty(node, i, in_ty)?;
        let o = self.emit(
            node,
            Kind::Tract(node.op.clone()),
            vec![x],
            Self::out_shape(node, 0)?,
            ty,
        );
        self.set(node, 0, o);
        Ok(())
    }

    fn softmax(&mut self, node: &TypedNode, op: &ops::nn::Softmax) -> CR<()> {
        if op.quant_output_dt.is_some() {
            return Err(self.unsupported(node, "quantized softmax"));
        }
        let log = op.kind == ops::nn::SoftmaxKind::LogSoftmax;
        let f = self.f();
        let shape = Self::out_shape(node, 0)?;
        let axes: Vec<usize> = op.axes.iter().copied().filter(|a| shape[*a] > 1).collect();
        let axis = match axes.as_slice() {
            [a] => *a,
            [] => op.axes.first().copied().unwrap_or(0),
            _ => return Err(self.unsupported(node, "softmax over several axes")),
        };
        let x = self.fixed(node, node.inputs[0])?;
        let o = self.emit(
            node,
            Kind::Softmax { axis, fo: f, log },
            vec![x],
            shape,
            Ty::Fixed(f),
        );
        self.set(node, 0, o);
        if !log && node.outputs[0].successors.len() == 1 {
            // A following Ln makes it a LogSoftmax (§4.9).
            self.softmax_steps
                .insert(OutletId::new(node.id, 0), self.plan.steps.len() - 1);
        }
        Ok(())
    }

    pub(crate) fn tree(&mut self, node: &TypedNode) -> CR<()> {
        let f = self.f();
        let op_type = node.op.name().to_string();
        let g = self.proto.graph.as_ref();
        let candidates: Vec<&tract_onnx::pb::NodeProto> = g
            .map(|g| g.node.iter().filter(|n| n.op_type == op_type).collect())
            .unwrap_or_default();
        let proto = candidates
            .iter()
            .find(|n| n.name == node.name)
            .or_else(|| (candidates.len() == 1).then(|| &candidates[0]))
            .copied()
            .ok_or_else(|| self.unsupported(node, "cannot find the ONNX node"))?;
        let plan = TreePlan::parse(proto, f, f).map_err(|e| self.unsupported(node, &e))?;
        let x = self.fixed(node, node.inputs[0])?;
        let mut outs = vec![];
        for (i, o) in node.outputs.iter().enumerate() {
            let ty = if is_float(o.fact.datum_type) {
                Ty::Fixed(f)
            } else {
                Ty::Int(DatumType::I64)
            };
            outs.push(self.slot(Self::out_shape(node, i)?, ty));
        }
        self.step(node, Kind::Tree(Box::new(plan)), vec![x], outs.clone());
        for (i, s) in outs.into_iter().enumerate() {
            self.set(node, i, s);
        }
        Ok(())
    }
}
