//! Lowering of element-wise operators: casts, binary and unary operators,
//! tabulated functions (spec §4.2-§4.4, §4.11).

use super::arith::{quantize, weight_frac};
use super::compile::{is_float, CVal, Compiler, CR};
use super::funcs::{self, Func};
use super::ir::{BinOp, BoolOp, CmpOp, IntOp, Kind, Ty, UnOp, XT};
use crate::EngineError;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops;

impl Compiler<'_> {
    pub(crate) fn cast(&mut self, node: &TypedNode, to: DatumType) -> CR<()> {
        let want = self.ty_of(to);
        let i = node.inputs[0];
        if let Some(CVal::Dyn(s)) = self.vals.get(&i).cloned() {
            let have = self.ty(s);
            if have == want || matches!((have, want), (Ty::Fixed(_), Ty::Fixed(_))) {
                self.set(node, 0, s);
                return Ok(());
            }
            let o = self.emit(
                node,
                Kind::Cast {
                    from: have,
                    to: want,
                },
                vec![s],
                self.shape(s),
                want,
            );
            self.set(node, 0, o);
            return Ok(());
        }
        let s = self.as_ty(node, i, want)?;
        self.set(node, 0, s);
        Ok(())
    }

    pub(crate) fn binary(&mut self, node: &TypedNode, name: &str) -> CR<()> {
        let (a, b) = (node.inputs[0], node.inputs[1]);
        let shape = Self::out_shape(node, 0)?;
        let f = self.f();
        let out_dt = node.outputs[0].fact.datum_type;
        let cmp = match name {
            "Eq" => Some(CmpOp::Eq),
            "NE" => Some(CmpOp::Ne),
            "LT" => Some(CmpOp::Lt),
            "GT" => Some(CmpOp::Gt),
            "LTE" => Some(CmpOp::Le),
            "GTE" => Some(CmpOp::Ge),
            _ => None,
        };
        if let Some(op) = cmp {
            let ty =
                if self.is_float_value(a) || self.is_float_value(b) {
                    Ty::Fixed(f)
                } else if node.inputs.iter().any(
                    |i| matches!(self.vals.get(i), Some(CVal::Dyn(s)) if self.ty(*s) == Ty::Bool),
                ) {
                    Ty::Bool
                } else {
                    Ty::Int(DatumType::I64)
                };
            let sa = self.as_ty(node, a, ty)?;
            let sb = self.as_ty(node, b, ty)?;
            let o = self.emit(node, Kind::Cmp { op }, vec![sa, sb], shape, Ty::Bool);
            self.set(node, 0, o);
            return Ok(());
        }
        if out_dt == DatumType::Bool {
            let op = match name {
                "And" => BoolOp::And,
                "Or" => BoolOp::Or,
                "Xor" => BoolOp::Xor,
                _ => return Err(self.unsupported(node, "boolean operator")),
            };
            let sa = self.as_ty(node, a, Ty::Bool)?;
            let sb = self.as_ty(node, b, Ty::Bool)?;
            let o = self.emit(node, Kind::BoolBin { op }, vec![sa, sb], shape, Ty::Bool);
            self.set(node, 0, o);
            return Ok(());
        }
        if !is_float(out_dt) {
            let op = match name {
                "Add" => IntOp::Add,
                "Sub" => IntOp::Sub,
                "Mul" => IntOp::Mul,
                "Div" => IntOp::Div,
                "Max" => IntOp::Max,
                "Min" => IntOp::Min,
                _ => return self.tract_step(node),
            };
            let ty = self.ty_of(out_dt);
            let sa = self.as_ty(node, a, ty)?;
            let sb = self.as_ty(node, b, ty)?;
            let o = self.emit(node, Kind::IntBin { op }, vec![sa, sb], shape, ty);
            self.set(node, 0, o);
            return Ok(());
        }
        if (name == "Mul" || name == "Add") && self.try_fold(node, name == "Mul")? {
            return Ok(());
        }
        let fx = Ty::Fixed(f);
        let (op, x, y) = match name {
            "Add" => (BinOp::Add, a, b),
            "Sub" => (BinOp::Sub, a, b),
            "SubF" => (BinOp::Sub, b, a),
            "Max" => (BinOp::Max, a, b),
            "Min" => (BinOp::Min, a, b),
            "Mul" => {
                let o = self.mul(node, a, b, shape)?;
                self.set(node, 0, o);
                return Ok(());
            }
            "Div" => {
                let o = self.div(node, a, b, shape)?;
                self.set(node, 0, o);
                return Ok(());
            }
            "Pow" => {
                let Some(e) = self.konst(b).filter(|t| t.len() == 1) else {
                    return Err(self.unsupported(node, "Pow with a non-constant exponent"));
                };
                let e = Self::f64s(&e)?[0];
                let x = self.fixed(node, a)?;
                let o = self.pow(node, x, e as f32)?;
                self.set(node, 0, o);
                return Ok(());
            }
            _ => return Err(self.unsupported(node, &format!("binary operator {name}"))),
        };
        let sat = matches!(op, BinOp::Max | BinOp::Min);
        let sx = self.operand(node, x, fx, sat)?;
        let sy = self.operand(node, y, fx, sat)?;
        let o = self.fixed_bin(node, op, 0, vec![sx, sy], shape);
        self.set(node, 0, o);
        Ok(())
    }

    /// An operand of type `ty`; with `saturate`, a float constant is
    /// clamped to the `i32` range (infinities included), which is exact for
    /// the operand of a `Max`/`Min` whose other operand is in range.
    fn operand(&mut self, node: &TypedNode, o: OutletId, ty: Ty, saturate: bool) -> CR<usize> {
        if let (true, Some(t), Ty::Fixed(f)) = (saturate, self.konst(o), ty) {
            if is_float(t.datum_type()) {
                let v = Self::f64s(&t)?
                    .iter()
                    .map(|x| {
                        if x.is_nan() {
                            Err(EngineError::InvalidModel(format!(
                                "exact: node `{}`: NaN constant",
                                node.name
                            )))
                        } else {
                            let y = (x * super::arith::pow2(f)).round_ties_even();
                            Ok(y.clamp(-super::arith::TWO63, super::arith::TWO63) as i64)
                        }
                    })
                    .collect::<CR<Vec<_>>>()?;
                return Ok(self.const_slot(XT::i64(t.shape().to_vec(), v), ty));
            }
        }
        self.as_ty(node, o, ty)
    }

    pub fn mul(
        &mut self,
        node: &TypedNode,
        a: OutletId,
        b: OutletId,
        shape: Vec<usize>,
    ) -> CR<usize> {
        let f = self.f();
        let (ca, cb) = (self.konst(a), self.konst(b));
        let (x, c) = match (ca, cb) {
            (None, Some(c)) => (a, Some(c)),
            (Some(c), None) => (b, Some(c)),
            _ => (a, None),
        };
        let sx = self.fixed(node, x)?;
        if let Some(c) = c {
            let (q, fc) = self.weight(&c)?;
            let sc = self.const_slot(q, Ty::Fixed(fc));
            return Ok(self.fixed_bin(node, BinOp::Mul, fc, vec![sx, sc], shape));
        }
        let sy = self.fixed(node, b)?;
        Ok(self.fixed_bin(node, BinOp::Mul, f, vec![sx, sy], shape))
    }

    fn div(&mut self, node: &TypedNode, a: OutletId, b: OutletId, shape: Vec<usize>) -> CR<usize> {
        let f = self.f();
        let sx = self.fixed(node, a)?;
        if let Some(c) = self.konst(b) {
            let (q, fc) = self.weight(&c)?;
            if q.as_i64().map_err(EngineError::Execution)?.contains(&0) {
                return Err(EngineError::InvalidModel(format!(
                    "exact: node `{}` divides by a constant that is zero at the weight precision",
                    node.name
                )));
            }
            // Common powers of two of the divisor cancel against the shift
            // (the rational quotient is unchanged).
            let qs = q.as_i64().map_err(EngineError::Execution)?;
            let tz = qs
                .iter()
                .map(|v| v.trailing_zeros())
                .min()
                .unwrap_or(0)
                .min(fc.max(0) as u32);
            let q = XT::i64(q.shape.clone(), qs.iter().map(|v| v >> tz).collect());
            let fc = fc - tz as i32;
            let sc = self.const_slot(q, Ty::Fixed(fc));
            return Ok(self.fixed_bin(node, BinOp::Div, fc, vec![sx, sc], shape));
        }
        let sy = self.fixed(node, b)?;
        Ok(self.fixed_bin(node, BinOp::Div, f, vec![sx, sy], shape))
    }

    /// `x^e` for the exponents exact mode defines.
    fn pow(&mut self, node: &TypedNode, x: usize, e: f32) -> CR<usize> {
        let f = self.f();
        let shape = self.shape(x);
        let fx = Ty::Fixed(f);
        let un = |op| Kind::Unary { op };
        Ok(match e {
            1.0 => x,
            2.0 => self.fixed_bin(node, BinOp::Mul, f, vec![x, x], shape),
            3.0 => {
                let sq = self.fixed_bin(node, BinOp::Mul, f, vec![x, x], shape.clone());
                self.fixed_bin(node, BinOp::Mul, f, vec![sq, x], shape)
            }
            0.5 => self.emit(node, un(UnOp::Sqrt { fx: f, fo: f }), vec![x], shape, fx),
            -0.5 => self.emit(node, un(UnOp::Rsqrt { fx: f, fo: f }), vec![x], shape, fx),
            -1.0 => self.emit(node, un(UnOp::Recip { fx: f, fo: f }), vec![x], shape, fx),
            _ => return Err(self.unsupported(node, &format!("Pow with exponent {e}"))),
        })
    }

    fn table_step(&mut self, node: &TypedNode, x: usize, func: Func) -> CR<usize> {
        let f = self.f();
        let t = funcs::table(func, f).map_err(EngineError::Execution)?;
        let shape = self.shape(x);
        Ok(self.emit(
            node,
            Kind::Table { table: t, fx: f },
            vec![x],
            shape,
            Ty::Fixed(f),
        ))
    }

    /// `x * c` for a float constant `c` (weight rule).
    fn mul_const(&mut self, node: &TypedNode, x: usize, c: f32) -> CR<usize> {
        let (q, fc) = self.weight(&tensor0(c))?;
        let sc = self.const_slot(q, Ty::Fixed(fc));
        let shape = self.shape(x);
        Ok(self.fixed_bin(node, BinOp::Mul, fc, vec![x, sc], shape))
    }

    fn add_const(&mut self, node: &TypedNode, x: usize, c: f32) -> CR<usize> {
        let f = self.f();
        let q = quantize(c as f64, f).unwrap_or(0);
        let sc = self.const_slot(XT::i64(vec![], vec![q]), Ty::Fixed(f));
        let shape = self.shape(x);
        Ok(self.fixed_bin(node, BinOp::Add, 0, vec![x, sc], shape))
    }

    /// A binary step whose result is at the activation scale.
    fn fixed_bin(
        &mut self,
        node: &TypedNode,
        op: BinOp,
        shift: i32,
        inputs: Vec<usize>,
        shape: Vec<usize>,
    ) -> usize {
        let ty = Ty::Fixed(self.f());
        self.emit(node, Kind::Bin { op, shift }, inputs, shape, ty)
    }

    fn mul2(&mut self, node: &TypedNode, x: usize, y: usize) -> usize {
        let f = self.f();
        let shape = self.shape(x);
        self.fixed_bin(node, BinOp::Mul, f, vec![x, y], shape)
    }

    pub(crate) fn unary(
        &mut self,
        node: &TypedNode,
        op: &dyn ops::element_wise::ElementWiseMiniOp,
    ) -> CR<()> {
        let name = op.name();
        let i = node.inputs[0];
        let f = self.f();
        if !self.is_float_value(i) {
            let ty = self.ty_of(node.outputs[0].fact.datum_type);
            let kind = match name.as_str() {
                "Not" => Kind::Not,
                "Neg" => Kind::Unary { op: UnOp::IntNeg },
                "Abs" => Kind::Unary { op: UnOp::IntAbs },
                _ => return self.tract_step(node),
            };
            let x = self.as_ty(node, i, ty)?;
            let o = self.emit(node, kind, vec![x], self.shape(x), ty);
            self.set(node, 0, o);
            return Ok(());
        }
        if name == "Ln" {
            if let Some(step) = self.softmax_steps.remove(&i) {
                if let Kind::Softmax { log, .. } = &mut self.plan.steps[step].kind {
                    *log = true;
                    let s = self.plan.steps[step].outputs[0];
                    self.set(node, 0, s);
                    return Ok(());
                }
            }
        }
        let x = self.fixed(node, i)?;
        let shape = self.shape(x);
        let fx = Ty::Fixed(f);
        let un = |op| Kind::Unary { op };
        let o = match name.as_str() {
            "Sigmoid" => self.table_step(node, x, Func::Sigmoid)?,
            "Tanh" => self.table_step(node, x, Func::Tanh)?,
            "Exp" => self.table_step(node, x, Func::Exp)?,
            "Erf" => self.table_step(node, x, Func::Erf)?,
            "Abs" => self.emit(node, un(UnOp::Abs), vec![x], shape, fx),
            "Neg" => self.emit(node, un(UnOp::Neg), vec![x], shape, fx),
            "Sign" => self.emit(node, un(UnOp::Sign { fo: f }), vec![x], shape, fx),
            "Floor" => self.emit(node, un(UnOp::Floor { fx: f }), vec![x], shape, fx),
            "Ceil" => self.emit(node, un(UnOp::Ceil { fx: f }), vec![x], shape, fx),
            "Round" => self.emit(node, un(UnOp::RoundAway { fx: f }), vec![x], shape, fx),
            "RoundHalfToEven" => self.emit(node, un(UnOp::Round { fx: f }), vec![x], shape, fx),
            "Ln" => self.emit(node, un(UnOp::Ln { fx: f, fo: f }), vec![x], shape, fx),
            "Sqrt" => self.pow(node, x, 0.5)?,
            "Rsqrt" => self.pow(node, x, -0.5)?,
            "Recip" => self.pow(node, x, -1.0)?,
            "Square" => self.pow(node, x, 2.0)?,
            "HardSwish" => self.emit(node, un(UnOp::HardSwish { f }), vec![x], shape, fx),
            "LeakyRelu" => {
                let alpha = op
                    .downcast_ref::<ops::nn::LeakyRelu>()
                    .map(|l| l.alpha)
                    .ok_or_else(|| self.unsupported(node, "LeakyRelu parameters"))?;
                let fa = weight_frac(&[alpha as f64], self.p.weight_bits as u32);
                let a = quantize(alpha as f64, fa).unwrap_or(0);
                self.emit(node, un(UnOp::LeakyRelu { a, fa }), vec![x], shape, fx)
            }
            "PowConst" => {
                let e = op
                    .downcast_ref::<ops::math::PowConst>()
                    .map(|p| p.exponent)
                    .ok_or_else(|| self.unsupported(node, "PowConst parameters"))?;
                self.pow(node, x, e)?
            }
            "Silu" => {
                let s = self.table_step(node, x, Func::Sigmoid)?;
                self.mul2(node, x, s)
            }
            "GeluExact" => {
                // x * (1 + erf(x / sqrt 2)) / 2
                let u = self.mul_const(node, x, std::f32::consts::FRAC_1_SQRT_2)?;
                let e = self.table_step(node, u, Func::Erf)?;
                let e1 = self.add_const(node, e, 1.0)?;
                let p = self.mul2(node, x, e1);
                self.mul_const(node, p, 0.5)?
            }
            "GeluApproximate" => {
                // x * (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) / 2
                let x3 = self.pow(node, x, 3.0)?;
                let c = self.mul_const(node, x3, 0.044715)?;
                let shape = self.shape(x);
                let s = self.fixed_bin(node, BinOp::Add, 0, vec![x, c], shape);
                let u = self.mul_const(node, s, 0.797_884_6)?;
                let t = self.table_step(node, u, Func::Tanh)?;
                let t1 = self.add_const(node, t, 1.0)?;
                let p = self.mul2(node, x, t1);
                self.mul_const(node, p, 0.5)?
            }
            _ => return Err(self.unsupported(node, &format!("element-wise operator {name}"))),
        };
        self.set(node, 0, o);
        Ok(())
    }
}
