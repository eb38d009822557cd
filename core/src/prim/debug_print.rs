//! The `debug_print` primitive and the `debug_print!` macro: prints run-time values from
//! inside staged functions (`jax.debug.print`). It has side effects and no outputs, so
//! dead-code elimination, CSE and constant folding keep it; compiled programs print when
//! they run, eager code prints immediately.

use crate::array::{bind, AVal, Array, HostView};
use crate::error::{Error, Result};
use crate::prim::Primitive;
use crate::storage::Storage;
use std::sync::Arc;

/// `debug_print[fmt](xs...)`: prints `fmt` with each `{}` replaced by an operand's value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DebugPrint {
    /// The format string (`{}` placeholders, one per operand).
    pub fmt: String,
}

/// Where printed lines go: stdout, or a capture buffer in tests.
fn emit(line: String) {
    let captured = CAPTURE.with(|c| {
        let mut c = c.borrow_mut();
        match c.as_mut() {
            Some(buf) => {
                buf.push(line.clone());
                true
            }
            None => false,
        }
    });
    if !captured {
        println!("{line}");
    }
}

thread_local! {
    static CAPTURE: std::cell::RefCell<Option<Vec<String>>> = const { std::cell::RefCell::new(None) };
}

/// Runs `f` collecting the lines `debug_print!` would print on this thread.
pub fn capture_debug_prints<R>(f: impl FnOnce() -> R) -> (R, Vec<String>) {
    let prev = CAPTURE.with(|c| c.borrow_mut().replace(Vec::new()));
    let r = f();
    let lines = CAPTURE
        .with(|c| std::mem::replace(&mut *c.borrow_mut(), prev))
        .unwrap_or_default();
    (r, lines)
}

impl Primitive for DebugPrint {
    fn name(&self) -> &'static str {
        "debug_print"
    }
    fn params(&self) -> String {
        format!("fmt={:?}", self.fmt)
    }
    fn abstract_eval(&self, ins: &[AVal]) -> Result<Vec<AVal>> {
        let holes = self.fmt.matches("{}").count();
        if holes != ins.len() {
            return Err(Error::invalid(
                "debug_print",
                format!(
                    "the format string has {holes} `{{}}` placeholders but {} values were given",
                    ins.len()
                ),
            ));
        }
        Ok(Vec::new())
    }
    fn eval(&self, ins: &[HostView<'_>], _outs: &[AVal]) -> Result<Vec<Storage>> {
        let mut parts = self.fmt.split("{}");
        let mut line = parts.next().unwrap_or("").to_string();
        for (v, rest) in ins.iter().zip(parts) {
            let a = Array::from_storage(v.shape.to_vec(), v.data.clone())?;
            line.push_str(&crate::format::format_array(&a));
            line.push_str(rest);
        }
        emit(line);
        Ok(Vec::new())
    }
    fn has_side_effects(&self) -> bool {
        true
    }
    fn vjp(
        &self,
        primals: &[Array],
        _outs: &[Array],
        _cts: &[Option<Array>],
    ) -> Result<Vec<Option<Array>>> {
        Ok(vec![None; primals.len()])
    }
}

/// Prints `fmt` with the values of `xs` (eagerly now, or when the staged program runs).
pub fn debug_print(fmt: &str, xs: &[&Array]) -> Result<()> {
    bind(
        Arc::new(DebugPrint {
            fmt: fmt.to_string(),
        }),
        xs,
    )
    .map(|_| ())
}

/// Anything `debug_print!` can print: tensors and arrays.
pub trait AsArrayRef {
    /// The untyped array.
    fn as_array_ref(&self) -> &Array;
}
impl AsArrayRef for Array {
    fn as_array_ref(&self) -> &Array {
        self
    }
}
impl<S: crate::Shape, E: crate::Elem> AsArrayRef for crate::Tensor<S, E> {
    fn as_array_ref(&self) -> &Array {
        self.array()
    }
}

/// Prints run-time values from inside (or outside) a staged function, like
/// `jax.debug.print`: `debug_print!("loss {} at w {}", loss, w)`. Inside `#[jit]` the values
/// are printed each time the compiled program runs, not when it is traced.
#[macro_export]
macro_rules! debug_print {
    ($fmt:literal $(, $arg:expr)* $(,)?) => {
        $crate::prim::debug_print::debug_print(
            $fmt,
            &[$($crate::prim::debug_print::AsArrayRef::as_array_ref(&$arg)),*],
        )
        .expect("debug_print!: the number of `{}` placeholders must match the values")
    };
}
