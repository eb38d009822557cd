//! numpy-style printing of small arrays (`[[1., 2.],\n [3., 4.]]`), summarized when large.

use crate::array::Array;
use crate::storage::Storage;

const SUMMARIZE_OVER: usize = 1000;
const EDGE: usize = 3;

fn fmt_elem(s: &Storage, i: usize) -> String {
    match s {
        Storage::Bool(v) => if v[i] { "True" } else { "False" }.to_string(),
        Storage::I32(v) => v[i].to_string(),
        Storage::I64(v) => v[i].to_string(),
        Storage::U32(v) => v[i].to_string(),
        _ => {
            let x = s.get_f64(i);
            if x.is_nan() {
                "nan".into()
            } else if x.is_infinite() {
                if x > 0.0 { "inf" } else { "-inf" }.into()
            } else if x == x.trunc() && x.abs() < 1e16 {
                format!("{x:.0}.")
            } else if x.abs() >= 1e-4 && x.abs() < 1e8 {
                let t = format!("{x:.4}");
                let t = t.trim_end_matches('0');
                t.to_string()
            } else {
                format!("{x:.4e}")
            }
        }
    }
}

/// Formats a host array like numpy; tracers and empty arrays get a short form.
pub fn format_array(a: &Array) -> String {
    let s = match a.storage("format") {
        Ok(s) => s,
        Err(_) => return format!("<traced {}>", a.aval()),
    };
    let shape = a.shape();
    if shape.is_empty() {
        return fmt_elem(s, 0);
    }
    let summarize = a.numel() > SUMMARIZE_OVER;
    let mut cells: Vec<String> = Vec::new();
    let strides = crate::prim::strides(shape);
    collect(s, shape, &strides, 0, 0, summarize, &mut cells);
    let width = cells.iter().map(|c| c.len()).max().unwrap_or(0);
    let mut it = cells.into_iter();
    let mut out = String::new();
    render(shape, 0, summarize, width, &mut it, &mut out);
    out
}

fn axis_indices(n: usize, summarize: bool) -> Vec<Option<usize>> {
    if summarize && n > 2 * EDGE {
        let mut v: Vec<Option<usize>> = (0..EDGE).map(Some).collect();
        v.push(None);
        v.extend((n - EDGE..n).map(Some));
        v
    } else {
        (0..n).map(Some).collect()
    }
}

fn collect(
    s: &Storage,
    shape: &[usize],
    strides: &[usize],
    axis: usize,
    base: usize,
    summarize: bool,
    out: &mut Vec<String>,
) {
    for i in axis_indices(shape[axis], summarize).into_iter().flatten() {
        let off = base + i * strides[axis];
        if axis + 1 == shape.len() {
            out.push(fmt_elem(s, off));
        } else {
            collect(s, shape, strides, axis + 1, off, summarize, out);
        }
    }
}

fn render(
    shape: &[usize],
    axis: usize,
    summarize: bool,
    width: usize,
    cells: &mut impl Iterator<Item = String>,
    out: &mut String,
) {
    out.push('[');
    let idx = axis_indices(shape[axis], summarize);
    let last = shape.len() - 1;
    for (k, i) in idx.iter().enumerate() {
        if k > 0 {
            if axis == last {
                out.push_str(", ");
            } else {
                out.push(',');
                for _ in 0..(last - axis) {
                    out.push('\n');
                }
                for _ in 0..=axis {
                    out.push(' ');
                }
            }
        }
        match i {
            None => out.push_str("..."),
            Some(_) if axis == last => {
                let c = cells.next().unwrap_or_default();
                out.push_str(&format!("{c:>width$}"));
            }
            Some(_) => render(shape, axis + 1, summarize, width, cells, out),
        }
    }
    out.push(']');
}
