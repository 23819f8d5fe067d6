//! Lowering of ConvTranspose (tract `Deconv`) to [`DeconvPlan`].

use super::compile::{Compiler, CR};
use super::conv::DeconvPlan;
use super::ir::{Kind, Ty};
use crate::EngineError;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops;
use tract_onnx::tract_core::ops::nn::DataFormat;

impl Compiler<'_> {
    /// ONNX ConvTranspose (tract `Deconv`).
    pub(crate) fn deconv(&mut self, node: &TypedNode, op: &ops::cnn::Deconv) -> CR<()> {
        let f = self.f();
        let shape = self.in_shape(node, 0)?;
        let out = Self::out_shape(node, 0)?;
        // Input geometry, then output sizes and the leading padding.
        let mut geo = self.geo(node, &op.pool_spec, &shape, &shape)?;
        let r = op.pool_spec.kernel_shape.len();
        let sp_at = |s: &[usize]| -> Vec<usize> {
            let (has_n, last) = match op.pool_spec.data_format {
                DataFormat::NCHW => (1, false),
                DataFormat::NHWC => (1, true),
                DataFormat::CHW => (0, false),
                DataFormat::HWC => (0, true),
            };
            let at = if last { has_n } else { has_n + 1 };
            s[at..at + r].to_vec()
        };
        let (isp, osp) = (sp_at(&shape), sp_at(&out));
        let pads = op
            .pool_spec
            .padding
            .compute_for_deconv(
                &isp,
                &op.pool_spec.kernel_shape,
                &op.pool_spec.dilations(),
                &op.pool_spec.strides(),
                &op.adjustments,
            )
            .map_err(|e| self.unsupported(node, &e.to_string()))?;
        let two = |v: &[usize], d: usize| if r == 2 { (v[0], v[1]) } else { (d, v[0]) };
        (geo.oh, geo.ow) = two(&osp, 1);
        let pb: Vec<usize> = pads.iter().map(|p| p.pad_before).collect();
        (geo.ph, geo.pw) = two(&pb, 0);
        let Some(kernel) = self.konst(node.inputs[1]) else {
            return Err(self.unsupported(node, "transposed convolution with a non-constant kernel"));
        };
        // The kernel as [G, O/G, I/G, H, W], with tract's own axis ops.
        let mut k: TValue = (*kernel).clone().into_tvalue();
        for a in op
            .kernel_format
            .kernel_as_group_o_i_hw_ops(kernel.shape(), op.group)
        {
            k = tract_onnx::tract_core::ops::EvalOp::eval_out_of_plan(&a, tvec!(k))
                .ok()
                .flatten()
                .and_then(|mut v| v.pop())
                .ok_or_else(|| self.unsupported(node, "kernel layout"))?;
        }
        let (q, fw) = self.weight(&k.into_tensor())?;
        let cout = op.pool_spec.output_channels;
        let bias = match node.inputs.get(2).and_then(|b| self.konst(*b)) {
            Some(b) => {
                let v = Self::f64s(&b)?;
                (0..cout)
                    .map(|o| {
                        super::arith::quantize(
                            if v.len() == 1 {
                                v[0]
                            } else {
                                v.get(o).copied().unwrap_or(0.0)
                            },
                            f + fw,
                        )
                        .ok_or_else(|| EngineError::InvalidModel("bias overflows".into()))
                    })
                    .collect::<CR<Vec<_>>>()?
            }
            None if node.inputs.len() < 3 => vec![0; cout],
            None => return Err(self.unsupported(node, "non-constant bias")),
        };
        let x = self.fixed(node, node.inputs[0])?;
        let plan = DeconvPlan {
            geo,
            cout,
            group: op.group,
            w: q.as_i64().map_err(EngineError::Execution)?.to_vec(),
            bias,
            shift: fw,
            out_shape: out.clone(),
        };
        let o = self.emit(
            node,
            Kind::Deconv(Box::new(plan)),
            vec![x],
            out,
            Ty::Fixed(f),
        );
        self.set(node, 0, o);
        Ok(())
    }
}
