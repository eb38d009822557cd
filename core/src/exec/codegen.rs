//! Machine code for fused f32 regions: on x86-64 Linux with AVX-512F, a region whose
//! members all have a [`Fast`] kernel is compiled once into a loop that evaluates the whole
//! chain sixteen lanes at a time in vector registers, so intermediates never touch memory
//! (not even L1: the chunked interpreter's one store per member per vector is what bounds
//! it). Every operation is the IEEE instruction the scalar formula of `prim::unary` /
//! `prim::binary` names, in the same order with the same fused multiply-adds, so the
//! result has the bits of the interpreter on every input (tests/fusion.rs and the tests
//! below check this on special values). Anything outside that subset (other ops, masks,
//! reductions, non-scalar broadcasts, more live values than registers) returns `None` and
//! the region runs on the chunked interpreter.

use crate::exec::kernels::Fast;

/// Where a [`PlanOp`] operand comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Src {
    /// Full-size input `k`, read at the current position.
    Input(usize),
    /// The result of an earlier op.
    Val(usize),
    /// Run-time scalar `k` (a splat operand), the same for every position.
    Scalar(usize),
}

/// One member of the region: `fast(args)`.
#[derive(Clone, Debug)]
pub(crate) struct PlanOp {
    pub fast: Fast,
    pub args: Vec<Src>,
}

/// A region in the form the code generator takes: inputs are pointers (in table order:
/// inputs then outputs), scalars are read from a table at run time.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    pub n_inputs: usize,
    pub n_scalars: usize,
    pub ops: Vec<PlanOp>,
    /// Op whose value is written to output `j`, in output order.
    pub outputs: Vec<usize>,
}

/// Elements per vector of the generated loop: ranges given to [`Kernel::run`] are
/// multiples of this.
pub(crate) const LANES: usize = 16;

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
pub(crate) use imp::Kernel;

/// Compiles `plan`, or `None` where this CPU/OS or the plan is outside what is generated.
pub(crate) fn compile(plan: &Plan) -> Option<Kernel> {
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    {
        if std::env::var_os("FERRAX_NO_CODEGEN").is_some_and(|v| v != "0") {
            return None;
        }
        if !(std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("fma"))
        {
            return None;
        }
        imp::compile(plan)
    }
    #[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
    {
        let _ = plan;
        None
    }
}

/// Stands in for the generated kernel where none can exist.
#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
#[derive(Debug)]
pub(crate) struct Kernel(std::convert::Infallible);

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
impl Kernel {
    pub(crate) fn table(
        &self,
        _: &[f32],
        _: &[*const f32],
        _: &[*mut f32],
    ) -> (Vec<u32>, Vec<usize>) {
        match self.0 {}
    }
    pub(crate) unsafe fn run(&self, _: &[usize], _: usize, _: usize) {
        match self.0 {}
    }
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
mod imp {
    use super::{Plan, Src};
    use crate::exec::kernels::Fast;

    // Constants of the scalar formulas (`exp_f32`, `tanh_f32`, `logistic_f32`), stored
    // as bit patterns in the constant table the kernel reads.
    const C_EXP_LO: usize = 0;
    const C_EXP_HI: usize = 1;
    const C_LOG2E: usize = 2;
    const C_MAGIC: usize = 3;
    const C_MAGIC_BITS: usize = 4;
    const C_LN2_HI: usize = 5;
    const C_LN2_LO: usize = 6;
    const C_P5: usize = 7; // first of the six exp polynomial coefficients
    const C_ONE: usize = 13;
    const C_I127: usize = 14;
    const C_ABS: usize = 15;
    const C_SIGN: usize = 16;
    const C_ZERO: usize = 17;
    const C_T0: usize = 18; // first of the five tanh polynomial coefficients
    const C_TANH_SPLIT: usize = 23;
    const C_TWO: usize = 24;
    const N_CONSTS: usize = 25;

    fn const_table() -> [u32; N_CONSTS] {
        let f = f32::to_bits;
        [
            f(-104.0),
            f(100.0),
            f(std::f32::consts::LOG2_E),
            f(12_582_912.0),
            f(12_582_912.0),
            f(0.693_145_75),
            f(1.428_606_8e-6),
            f(1.987_569_1e-4),
            f(1.398_199_9e-3),
            f(8.333_452e-3),
            f(4.166_579_6e-2),
            f(1.666_666_5e-1),
            f(0.5),
            f(1.0),
            127,
            0x7fff_ffff,
            0x8000_0000,
            f(0.0),
            f(-5.704_988_7e-3),
            f(2.063_909e-2),
            f(-5.373_971_6e-2),
            f(1.333_144_2e-1),
            f(-3.333_328e-1),
            f(0.625),
            f(2.0),
        ]
    }

    // General-purpose registers (numbers as encoded).
    const RAX: u8 = 0;
    const RCX: u8 = 1;
    const RDX: u8 = 2;
    const RSI: u8 = 6;
    const RDI: u8 = 7;
    const R8: u8 = 8;
    const R9: u8 = 9;
    const R10: u8 = 10;
    const R11: u8 = 11;
    /// Registers holding the first table pointers for the whole loop; later ones are
    /// reloaded into R11 at each use.
    const PTR_REGS: [u8; 4] = [RCX, R8, R9, R10];

    /// Vector temporaries of the expansions (zmm0..zmm7); values live in zmm8..zmm31.
    const T: [u8; 8] = [0, 1, 2, 3, 4, 5, 6, 7];
    const FIRST_VAL_REG: u8 = 8;
    const N_VAL_REGS: usize = 24;

    #[derive(Clone, Copy)]
    enum Rm {
        Reg(u8),
        /// `[base + index + disp32]` (index optional).
        Mem {
            base: u8,
            index: Option<u8>,
            disp: i32,
        },
    }

    /// Opcode map and prefix of an EVEX instruction.
    #[derive(Clone, Copy)]
    struct Enc {
        map: u8,
        pp: u8,
        op: u8,
    }

    const fn e(map: u8, pp: u8, op: u8) -> Enc {
        Enc { map, pp, op }
    }
    const VMOVUPS_LOAD: Enc = e(1, 0, 0x10);
    const VMOVUPS_STORE: Enc = e(1, 0, 0x11);
    const VMOVAPS: Enc = e(1, 0, 0x28);
    const VBROADCASTSS: Enc = e(2, 1, 0x18);
    const VSQRTPS: Enc = e(1, 0, 0x51);
    const VADDPS: Enc = e(1, 0, 0x58);
    const VMULPS: Enc = e(1, 0, 0x59);
    const VSUBPS: Enc = e(1, 0, 0x5C);
    const VMINPS: Enc = e(1, 0, 0x5D);
    const VDIVPS: Enc = e(1, 0, 0x5E);
    const VMAXPS: Enc = e(1, 0, 0x5F);
    const VCMPPS: Enc = e(1, 0, 0xC2);
    const VPANDD: Enc = e(1, 1, 0xDB);
    const VPORD: Enc = e(1, 1, 0xEB);
    const VPXORD: Enc = e(1, 1, 0xEF);
    const VPADDD: Enc = e(1, 1, 0xFE);
    const VPSUBD: Enc = e(1, 1, 0xFA);
    const VPSHIFTD_IMM: Enc = e(1, 1, 0x72);
    const VFMADD213PS: Enc = e(2, 1, 0xA8);
    const VFMADD231PS: Enc = e(2, 1, 0xB8);
    const VFNMADD231PS: Enc = e(2, 1, 0xBC);
    const VBLENDMPS: Enc = e(2, 1, 0x65);
    const CMP_LT_OQ: u8 = 0x11;
    const CMP_GE_OQ: u8 = 0x1D;

    struct Asm {
        code: Vec<u8>,
    }

    impl Asm {
        /// An EVEX-encoded 512-bit instruction: `reg` is ModRM.reg (a vector register,
        /// a mask register, or an opcode extension), `v` the NDS operand (0 when unused),
        /// `rm` the register or memory operand; `bcst` reads one f32/i32 from memory and
        /// broadcasts it; `mask` selects k1..k7 for blends.
        #[allow(clippy::too_many_arguments)]
        fn evex(
            &mut self,
            enc: Enc,
            reg: u8,
            v: u8,
            rm: Rm,
            bcst: bool,
            mask: u8,
            imm: Option<u8>,
        ) {
            let (b3, x) = match rm {
                Rm::Reg(r) => ((r >> 3) & 1, (r >> 4) & 1),
                Rm::Mem { base, index, .. } => ((base >> 3) & 1, index.map_or(0, |i| (i >> 3) & 1)),
            };
            let p0 = ((!(reg >> 3) & 1) << 7)
                | ((!x & 1) << 6)
                | ((!b3 & 1) << 5)
                | ((!(reg >> 4) & 1) << 4)
                | enc.map;
            let p1 = (((!v) & 0xF) << 3) | 0b100 | enc.pp;
            let p2 = (0b10 << 5) | ((bcst as u8) << 4) | ((!(v >> 4) & 1) << 3) | (mask & 7);
            self.code.extend_from_slice(&[0x62, p0, p1, p2, enc.op]);
            self.modrm(reg, rm);
            if let Some(i) = imm {
                self.code.push(i);
            }
        }

        fn modrm(&mut self, reg: u8, rm: Rm) {
            match rm {
                Rm::Reg(r) => self.code.push(0xC0 | ((reg & 7) << 3) | (r & 7)),
                Rm::Mem { base, index, disp } => {
                    match index {
                        Some(i) => {
                            self.code.push(0x80 | ((reg & 7) << 3) | 0b100);
                            self.code.push(((i & 7) << 3) | (base & 7));
                        }
                        None if base & 7 == 4 => {
                            self.code.push(0x80 | ((reg & 7) << 3) | 0b100);
                            self.code.push(0x24);
                        }
                        None => self.code.push(0x80 | ((reg & 7) << 3) | (base & 7)),
                    }
                    self.code.extend_from_slice(&disp.to_le_bytes());
                }
            }
        }

        /// `dst = op(a, b)` on vector registers.
        fn rrr(&mut self, enc: Enc, dst: u8, a: u8, b: u8) {
            self.evex(enc, dst, a, Rm::Reg(b), false, 0, None);
        }

        /// `dst = op(a, const[c])` with the constant broadcast from the table.
        fn rrc(&mut self, enc: Enc, dst: u8, a: u8, c: usize) {
            self.evex(enc, dst, a, cmem(c), true, 0, None);
        }

        fn bcast(&mut self, dst: u8, c: usize) {
            self.evex(VBROADCASTSS, dst, 0, cmem(c), false, 0, None);
        }

        fn mov(&mut self, dst: u8, src: u8) {
            if dst != src {
                self.evex(VMOVAPS, dst, 0, Rm::Reg(src), false, 0, None);
            }
        }

        /// `mov r64, [rdi + disp32]`.
        fn load_ptr(&mut self, r: u8, slot: usize) {
            let disp = i32::try_from(slot * 8).expect("pointer table fits i32");
            self.code.push(0x48 | ((r >> 3) & 1) << 2);
            self.code.push(0x8B);
            self.modrm(
                r,
                Rm::Mem {
                    base: RDI,
                    index: None,
                    disp,
                },
            );
        }
    }

    fn cmem(c: usize) -> Rm {
        Rm::Mem {
            base: RAX,
            index: None,
            disp: (c * 4) as i32,
        }
    }

    /// `dst = exp_f32(x)`; uses T0..T5; `dst` may be `x` or T5 (x is read first only).
    fn emit_exp(a: &mut Asm, dst: u8, x: u8) {
        let [t0, t1, t2, t3, t4, t5, ..] = T;
        // x = x.clamp(-104, 100): max(lo, x) and min(hi, x) keep a NaN x (second operand).
        a.bcast(t0, C_EXP_LO);
        a.rrr(VMAXPS, t0, t0, x);
        a.bcast(t1, C_EXP_HI);
        a.rrr(VMINPS, t0, t1, t0);
        // t = fma(x, log2e, MAGIC); n = t - MAGIC; ni = bits(t) - bits(MAGIC).
        a.bcast(t1, C_MAGIC);
        a.evex(VFMADD231PS, t1, t0, cmem(C_LOG2E), true, 0, None);
        a.rrc(VSUBPS, t2, t1, C_MAGIC);
        a.rrc(VPSUBD, t3, t1, C_MAGIC_BITS);
        // r = fma(-n, ln2_hi, x); r = fma(-n, ln2_lo, r).
        a.mov(t4, t0);
        a.evex(VFNMADD231PS, t4, t2, cmem(C_LN2_HI), true, 0, None);
        a.evex(VFNMADD231PS, t4, t2, cmem(C_LN2_LO), true, 0, None);
        // Horner: p = fma(p, r, c).
        a.bcast(t5, C_P5);
        for c in C_P5 + 1..C_P5 + 6 {
            a.evex(VFMADD213PS, t5, t4, cmem(c), true, 0, None);
        }
        // p = fma(p, r*r, r) + 1.
        a.rrr(VMULPS, t2, t4, t4);
        a.evex(VFMADD213PS, t5, t2, Rm::Reg(t4), false, 0, None);
        a.rrc(VADDPS, t5, t5, C_ONE);
        // Two scale factors 2^(ni>>1) and 2^(ni - (ni>>1)).
        a.evex(VPSHIFTD_IMM, 4, t1, Rm::Reg(t3), false, 0, Some(1)); // vpsrad t1, t3, 1
        a.rrr(VPSUBD, t3, t3, t1);
        a.rrc(VPADDD, t1, t1, C_I127);
        a.evex(VPSHIFTD_IMM, 6, t1, Rm::Reg(t1), false, 0, Some(23)); // vpslld t1, t1, 23
        a.rrc(VPADDD, t3, t3, C_I127);
        a.evex(VPSHIFTD_IMM, 6, t3, Rm::Reg(t3), false, 0, Some(23));
        a.rrr(VMULPS, t5, t5, t1);
        a.rrr(VMULPS, dst, t5, t3);
    }

    /// `dst = logistic_f32(x)`; uses T0..T7; `x` must not be a temporary.
    fn emit_logistic(a: &mut Asm, dst: u8, x: u8) {
        let [t0, _, _, _, _, _, t6, t7] = T;
        // e = exp(-|x|)
        a.rrc(VPANDD, t6, x, C_ABS);
        a.rrc(VPXORD, t6, t6, C_SIGN);
        emit_exp(a, t6, t6);
        // r = 1 / (1 + e); x >= 0 ? r : e * r
        a.rrc(VADDPS, t0, t6, C_ONE);
        a.bcast(t7, C_ONE);
        a.rrr(VDIVPS, t7, t7, t0);
        a.rrr(VMULPS, t0, t6, t7);
        a.evex(VCMPPS, 1, x, cmem(C_ZERO), true, 0, Some(CMP_GE_OQ));
        a.evex(VBLENDMPS, dst, t0, Rm::Reg(t7), false, 1, None);
    }

    /// `dst = tanh_f32(x)`; uses T0..T7; `x` must not be a temporary.
    fn emit_tanh(a: &mut Asm, dst: u8, x: u8) {
        let [t0, t1, _, _, _, t5, t6, t7] = T;
        // small = fma(q, x, x), q = poly(z) * z, z = x * x
        a.rrr(VMULPS, t6, x, x);
        a.bcast(t7, C_T0);
        for c in C_T0 + 1..C_T0 + 5 {
            a.evex(VFMADD213PS, t7, t6, cmem(c), true, 0, None);
        }
        a.rrr(VMULPS, t7, t7, t6);
        a.evex(VFMADD213PS, t7, x, Rm::Reg(x), false, 0, None);
        // large = 1 - 2 / (exp(a + a) + 1), a = |x|
        a.rrc(VPANDD, t6, x, C_ABS);
        a.rrr(VADDPS, t5, t6, t6);
        emit_exp(a, t5, t5);
        a.rrc(VADDPS, t0, t5, C_ONE);
        a.bcast(t1, C_TWO);
        a.rrr(VDIVPS, t1, t1, t0);
        a.bcast(t0, C_ONE);
        a.rrr(VSUBPS, t0, t0, t1);
        // a < 0.625 ? small : large, then copysign(_, x)
        a.evex(VCMPPS, 1, t6, cmem(C_TANH_SPLIT), true, 0, Some(CMP_LT_OQ));
        a.evex(VBLENDMPS, t0, t0, Rm::Reg(t7), false, 1, None);
        a.rrc(VPANDD, t0, t0, C_ABS);
        a.rrc(VPANDD, t1, x, C_SIGN);
        a.rrr(VPORD, dst, t0, t1);
    }

    /// Generated code in its own executable mapping.
    pub(crate) struct Kernel {
        ptr: *mut u8,
        len: usize,
        consts: Vec<u32>,
        n_inputs: usize,
        n_outputs: usize,
        n_scalars: usize,
    }

    // SAFETY: the mapping is immutable after construction and only executed.
    unsafe impl Send for Kernel {}
    // SAFETY: as above.
    unsafe impl Sync for Kernel {}

    impl std::fmt::Debug for Kernel {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "Kernel({} bytes of AVX-512)", self.len)
        }
    }

    impl Drop for Kernel {
        fn drop(&mut self) {
            // SAFETY: `ptr`/`len` are the mapping made in `compile`.
            unsafe { libc::munmap(self.ptr as *mut libc::c_void, self.len) };
        }
    }

    impl Kernel {
        /// The table one run reads: the constants (the formulas', then `scalars`), then
        /// the addresses of the plan's inputs and outputs. Built once per region run; the
        /// returned constants must outlive every [`Kernel::run`] with the table.
        pub(crate) fn table(
            &self,
            scalars: &[f32],
            ins: &[*const f32],
            outs: &[*mut f32],
        ) -> (Vec<u32>, Vec<usize>) {
            assert!(
                ins.len() == self.n_inputs
                    && outs.len() == self.n_outputs
                    && scalars.len() == self.n_scalars,
                "codegen kernel given a mismatched table"
            );
            let mut consts = self.consts.clone();
            consts.extend(scalars.iter().map(|s| s.to_bits()));
            let table = std::iter::once(consts.as_ptr() as usize)
                .chain(ins.iter().map(|p| *p as usize))
                .chain(outs.iter().map(|p| *p as usize))
                .collect();
            (consts, table)
        }

        /// Runs positions `[start, end)` (multiples of [`LANES`](super::LANES)).
        ///
        /// # Safety
        /// `table` comes from [`Kernel::table`] whose constants are still alive; its
        /// inputs and outputs are valid for `end` elements; an output may alias an input
        /// only position for position (every input of a vector is read before any output
        /// of it is written).
        pub(crate) unsafe fn run(&self, table: &[usize], start: usize, end: usize) {
            assert!(
                table.len() == 1 + self.n_inputs + self.n_outputs
                    && start.is_multiple_of(super::LANES)
                    && end.is_multiple_of(super::LANES),
                "codegen kernel called with a mismatched table or range"
            );
            if start >= end {
                return;
            }
            // SAFETY: the mapping holds a function of this signature (see `compile`).
            let f: unsafe extern "sysv64" fn(*const usize, usize, usize) =
                unsafe { std::mem::transmute(self.ptr) };
            // SAFETY: the caller promised valid pointers for the byte range.
            unsafe { f(table.as_ptr(), start * 4, end * 4) }
        }
    }

    /// The register holding a value, or a fresh temporary loaded with a scalar.
    struct Regs {
        of_val: Vec<Option<u8>>,
        of_input: Vec<Option<u8>>,
        free: Vec<u8>,
    }

    impl Regs {
        fn take(&mut self) -> Option<u8> {
            self.free.pop()
        }
    }

    pub(super) fn compile(plan: &Plan) -> Option<Kernel> {
        let n_ops = plan.ops.len();
        let n_out = plan.outputs.len();
        if n_ops == 0 || n_out == 0 {
            return None;
        }
        let n_ptrs = plan.n_inputs + n_out;
        // Last op reading each value / input; outputs are stored right after their op.
        let mut last_val = vec![usize::MAX; n_ops];
        let mut last_in = vec![usize::MAX; plan.n_inputs];
        for (i, op) in plan.ops.iter().enumerate() {
            let arity = match op.fast {
                Fast::Add | Fast::Sub | Fast::Mul | Fast::Div => 2,
                _ => 1,
            };
            if op.args.len() != arity {
                return None;
            }
            for a in &op.args {
                match *a {
                    Src::Val(v) if v < i => last_val[v] = i,
                    Src::Input(k) if k < plan.n_inputs => last_in[k] = i,
                    Src::Scalar(s) if s < plan.n_scalars => {}
                    _ => return None,
                }
            }
        }
        if plan.outputs.iter().any(|&o| o >= n_ops) {
            return None;
        }
        let mut asm = Asm { code: Vec::new() };
        let ptr_reg = |asm: &mut Asm, slot: usize| -> u8 {
            // Table slot 0 is the constant table; pointers follow.
            match PTR_REGS.get(slot) {
                Some(&r) => r,
                None => {
                    asm.load_ptr(R11, slot + 1);
                    R11
                }
            }
        };
        // Prologue: rax = constants, first pointers into registers.
        asm.load_ptr(RAX, 0);
        for (slot, &r) in PTR_REGS.iter().enumerate().take(n_ptrs) {
            asm.load_ptr(r, slot + 1);
        }
        let loop_top = asm.code.len();
        let mut regs = Regs {
            of_val: vec![None; n_ops],
            of_input: vec![None; plan.n_inputs],
            free: (FIRST_VAL_REG..FIRST_VAL_REG + N_VAL_REGS as u8)
                .rev()
                .collect(),
        };
        // Every input of this position is loaded before anything is stored, which makes an
        // output that took over an input's buffer safe.
        for k in 0..plan.n_inputs {
            if last_in[k] == usize::MAX {
                continue;
            }
            let r = regs.take()?;
            let base = ptr_reg(&mut asm, k);
            asm.evex(
                VMOVUPS_LOAD,
                r,
                0,
                Rm::Mem {
                    base,
                    index: Some(RSI),
                    disp: 0,
                },
                false,
                0,
                None,
            );
            regs.of_input[k] = Some(r);
        }
        let scalar_const = |s: usize| N_CONSTS + s;
        for (i, op) in plan.ops.iter().enumerate() {
            let reg_of = |regs: &Regs, s: Src| -> Option<u8> {
                match s {
                    Src::Val(v) => regs.of_val[v],
                    Src::Input(k) => regs.of_input[k],
                    Src::Scalar(_) => None,
                }
            };
            let dst = regs.take()?;
            match op.fast {
                Fast::Add | Fast::Sub | Fast::Mul | Fast::Div => {
                    let enc = match op.fast {
                        Fast::Add => VADDPS,
                        Fast::Sub => VSUBPS,
                        Fast::Mul => VMULPS,
                        _ => VDIVPS,
                    };
                    let (x, y) = (op.args[0], op.args[1]);
                    // The first operand must be a register (operand order is kept: NaN
                    // payloads follow the first operand as in the scalar code).
                    let a_reg = match (reg_of(&regs, x), x) {
                        (Some(r), _) => r,
                        (None, Src::Scalar(s)) => {
                            asm.bcast(T[0], scalar_const(s));
                            T[0]
                        }
                        _ => return None,
                    };
                    match (reg_of(&regs, y), y) {
                        (Some(r), _) => asm.rrr(enc, dst, a_reg, r),
                        (None, Src::Scalar(s)) => asm.rrc(enc, dst, a_reg, scalar_const(s)),
                        _ => return None,
                    }
                }
                unary => {
                    let x = match (reg_of(&regs, op.args[0]), op.args[0]) {
                        (Some(r), _) => r,
                        (None, Src::Scalar(s)) => {
                            // A transcendental of a scalar: keep it out of the temporaries.
                            let r = regs.take()?;
                            asm.bcast(r, scalar_const(s));
                            regs.free.insert(0, r);
                            r
                        }
                        _ => return None,
                    };
                    match unary {
                        Fast::Neg => asm.rrc(VPXORD, dst, x, C_SIGN),
                        Fast::Abs => asm.rrc(VPANDD, dst, x, C_ABS),
                        Fast::Sqrt => asm.evex(VSQRTPS, dst, 0, Rm::Reg(x), false, 0, None),
                        Fast::Exp => emit_exp(&mut asm, dst, x),
                        Fast::Tanh => emit_tanh(&mut asm, dst, x),
                        Fast::Logistic => emit_logistic(&mut asm, dst, x),
                        Fast::Add | Fast::Sub | Fast::Mul | Fast::Div => unreachable!(),
                    }
                }
            }
            regs.of_val[i] = Some(dst);
            for (j, &o) in plan.outputs.iter().enumerate() {
                if o == i {
                    let base = ptr_reg(&mut asm, plan.n_inputs + j);
                    asm.evex(
                        VMOVUPS_STORE,
                        dst,
                        0,
                        Rm::Mem {
                            base,
                            index: Some(RSI),
                            disp: 0,
                        },
                        false,
                        0,
                        None,
                    );
                }
            }
            // Release registers whose last reader is this op (and this value if unused).
            for a in &op.args {
                match *a {
                    Src::Val(v) if last_val[v] == i => {
                        if let Some(r) = regs.of_val[v].take() {
                            regs.free.push(r);
                        }
                    }
                    Src::Input(k) if last_in[k] == i => {
                        if let Some(r) = regs.of_input[k].take() {
                            regs.free.push(r);
                        }
                    }
                    _ => {}
                }
            }
            if last_val[i] == usize::MAX {
                if let Some(r) = regs.of_val[i].take() {
                    regs.free.push(r);
                }
            }
        }
        // add rsi, 64; cmp rsi, rdx; jb loop_top; vzeroupper; ret
        asm.code.extend_from_slice(&[0x48, 0x81, 0xC6, 64, 0, 0, 0]);
        asm.code.extend_from_slice(&[0x48, 0x39, 0xD6]);
        let rel = loop_top as i64 - (asm.code.len() as i64 + 6);
        asm.code.extend_from_slice(&[0x0F, 0x82]);
        asm.code
            .extend_from_slice(&i32::try_from(rel).ok()?.to_le_bytes());
        asm.code.extend_from_slice(&[0xC5, 0xF8, 0x77, 0xC3]);
        let _ = RDX;
        map_code(&asm.code).map(|(ptr, len)| Kernel {
            ptr,
            len,
            consts: const_table().to_vec(),
            n_inputs: plan.n_inputs,
            n_outputs: n_out,
            n_scalars: plan.n_scalars,
        })
    }

    /// Copies `code` into a fresh mapping and makes it executable (never writable and
    /// executable at once).
    fn map_code(code: &[u8]) -> Option<(*mut u8, usize)> {
        let len = code.len().next_multiple_of(4096);
        // SAFETY: an anonymous private mapping; checked for failure below.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return None;
        }
        // SAFETY: the mapping has `len >= code.len()` writable bytes.
        unsafe { std::ptr::copy_nonoverlapping(code.as_ptr(), p as *mut u8, code.len()) };
        // SAFETY: `p`/`len` is the mapping above.
        if unsafe { libc::mprotect(p, len, libc::PROT_READ | libc::PROT_EXEC) } != 0 {
            // SAFETY: as above.
            unsafe { libc::munmap(p, len) };
            return None;
        }
        Some((p as *mut u8, len))
    }
}

#[cfg(all(test, target_arch = "x86_64", target_os = "linux"))]
mod tests {
    use super::{compile, Plan, PlanOp, Src, LANES};
    use crate::exec::kernels::{apply_f32, Fast};

    /// Inputs covering the special cases of every formula: signed zeros, infinities,
    /// NaN, the clamp and split points of exp/tanh, subnormals, and a sweep of ordinary
    /// values; the length is a multiple of the vector width.
    fn specials() -> Vec<f32> {
        let mut v = vec![
            0.0,
            -0.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            -f32::NAN,
            f32::MIN_POSITIVE,
            -1e-40,
            1e-40,
            0.625,
            -0.625,
            0.624_999_94,
            104.0,
            -104.0,
            100.0,
            88.72,
            -87.3,
            -103.9,
            f32::MAX,
            f32::MIN,
            1.0,
            -1.0,
            0.5,
            9.0,
        ];
        let mut s = 0x2545_f491u32;
        while v.len() < 4096 {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            let u = (s >> 8) as f32 / (1u32 << 24) as f32;
            v.push((u - 0.5) * [1.0, 8.0, 60.0, 250.0][v.len() % 4]);
        }
        v
    }

    /// Runs a plan on the generated code and on the interpreter's kernels (the oracle:
    /// `apply_f32` is the path the chunked executor takes) and compares bits.
    fn check(plan: &Plan, inputs: &[Vec<f32>], scalars: &[f32]) {
        let k = compile(plan).expect("plan compiles");
        let n = inputs[0].len();
        assert_eq!(n % LANES, 0);
        let mut vals: Vec<Vec<f32>> = Vec::new();
        for op in &plan.ops {
            let args: Vec<Vec<f32>> = op
                .args
                .iter()
                .map(|a| match *a {
                    Src::Input(i) => inputs[i].clone(),
                    Src::Val(v) => vals[v].clone(),
                    Src::Scalar(s) => vec![scalars[s]; n],
                })
                .collect();
            let refs: Vec<&[f32]> = args.iter().map(|a| a.as_slice()).collect();
            let mut out = vec![0.0; n];
            apply_f32(op.fast, &refs, &mut out);
            vals.push(out);
        }
        let mut outs: Vec<Vec<f32>> = plan.outputs.iter().map(|_| vec![7.0; n]).collect();
        let ins: Vec<*const f32> = inputs.iter().map(|v| v.as_ptr()).collect();
        let outp: Vec<*mut f32> = outs.iter_mut().map(|v| v.as_mut_ptr()).collect();
        let (_consts, table) = k.table(scalars, &ins, &outp);
        // Two calls over a split range: the start offset is honoured.
        // SAFETY: every pointer is valid for n elements; outputs do not alias inputs.
        unsafe {
            k.run(&table, 0, n / 2 / LANES * LANES);
            k.run(&table, n / 2 / LANES * LANES, n);
        }
        for (j, &o) in plan.outputs.iter().enumerate() {
            for i in 0..n {
                assert_eq!(
                    outs[j][i].to_bits(),
                    vals[o][i].to_bits(),
                    "output {j} at {i}: inputs {:?}, got {}, want {}",
                    inputs.iter().map(|v| v[i]).collect::<Vec<_>>(),
                    outs[j][i],
                    vals[o][i]
                );
            }
        }
    }

    /// Whether this CPU gets generated code; says why not when it does not.
    fn generates() -> bool {
        let yes = std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("fma");
        if !yes {
            eprintln!("skipped: this CPU has no AVX-512F/FMA, so no code is generated");
        }
        yes
    }

    fn op(fast: Fast, args: Vec<Src>) -> PlanOp {
        PlanOp { fast, args }
    }

    fn one(fast: Fast, args: Vec<Src>, n_inputs: usize, n_scalars: usize) -> Plan {
        Plan {
            n_inputs,
            n_scalars,
            ops: vec![PlanOp { fast, args }],
            outputs: vec![0],
        }
    }

    #[test]
    fn every_op_has_the_interpreters_bits() {
        if !generates() {
            return;
        }
        let x = specials();
        let y: Vec<f32> = x.iter().rev().copied().collect();
        for fast in [
            Fast::Neg,
            Fast::Abs,
            Fast::Exp,
            Fast::Tanh,
            Fast::Logistic,
            Fast::Sqrt,
        ] {
            check(
                &one(fast, vec![Src::Input(0)], 1, 0),
                std::slice::from_ref(&x),
                &[],
            );
        }
        for fast in [Fast::Add, Fast::Sub, Fast::Mul, Fast::Div] {
            check(
                &one(fast, vec![Src::Input(0), Src::Input(1)], 2, 0),
                &[x.clone(), y.clone()],
                &[],
            );
            // A scalar on either side keeps its operand position.
            for s in [2.5f32, -0.0, f32::NAN] {
                check(
                    &one(fast, vec![Src::Input(0), Src::Scalar(0)], 1, 1),
                    std::slice::from_ref(&x),
                    &[s],
                );
                check(
                    &one(fast, vec![Src::Scalar(0), Src::Input(0)], 1, 1),
                    std::slice::from_ref(&x),
                    &[s],
                );
            }
        }
    }

    /// B2's chain, `gelu_tanh(x * a + b)` as `ops::gelu_tanh` stages it, with two outputs
    /// (an intermediate and the result) and a value reused by three later ops.
    #[test]
    fn chains_with_shared_values_and_several_outputs() {
        if !generates() {
            return;
        }
        use Src::{Input, Scalar, Val};
        let plan = Plan {
            n_inputs: 1,
            n_scalars: 4,
            ops: vec![
                op(Fast::Mul, vec![Input(0), Scalar(0)]),
                op(Fast::Sub, vec![Val(0), Scalar(1)]),
                op(Fast::Mul, vec![Val(1), Val(1)]),
                op(Fast::Mul, vec![Val(2), Scalar(2)]),
                op(Fast::Add, vec![Val(3), Scalar(3)]),
                op(Fast::Mul, vec![Val(1), Val(4)]),
                op(Fast::Logistic, vec![Val(5)]),
                op(Fast::Mul, vec![Val(1), Val(6)]),
                op(Fast::Tanh, vec![Val(7)]),
                op(Fast::Exp, vec![Scalar(0)]),
                op(Fast::Div, vec![Val(8), Val(9)]),
            ],
            outputs: vec![10, 1, 7],
        };
        check(&plan, &[specials()], &[1.25, 0.5, 0.071_354_82, 1.595_769]);
    }

    /// More pointers than the loop keeps in registers (the rest are reloaded at each use),
    /// as an optimizer update has: six inputs, three outputs.
    #[test]
    fn many_inputs_and_outputs() {
        if !generates() {
            return;
        }
        use Src::{Input, Scalar, Val};
        let plan = Plan {
            n_inputs: 6,
            n_scalars: 1,
            ops: vec![
                op(Fast::Mul, vec![Input(0), Input(1)]),
                op(Fast::Add, vec![Val(0), Input(2)]),
                op(Fast::Sqrt, vec![Input(3)]),
                op(Fast::Div, vec![Val(1), Val(2)]),
                op(Fast::Sub, vec![Input(4), Val(3)]),
                op(Fast::Mul, vec![Input(5), Scalar(0)]),
                op(Fast::Add, vec![Val(4), Val(5)]),
            ],
            outputs: vec![6, 1, 3],
        };
        let x = specials();
        let ins: Vec<Vec<f32>> = (0..6)
            .map(|k| {
                x.iter()
                    .cycle()
                    .skip(k * 7)
                    .take(x.len())
                    .copied()
                    .collect()
            })
            .collect();
        check(&plan, &ins, &[0.9]);
    }

    /// More simultaneously live values than vector registers: no code, the interpreter
    /// runs the region.
    #[test]
    fn too_many_live_values_fall_back() {
        let plan = Plan {
            n_inputs: 30,
            n_scalars: 0,
            ops: (1..30)
                .map(|k| PlanOp {
                    fast: Fast::Add,
                    args: vec![Src::Input(0), Src::Input(k)],
                })
                .collect(),
            outputs: vec![28],
        };
        assert!(compile(&plan).is_none());
    }
}
