//! Shared exact reader for the JAX reference files in `tests/reference/*.json`.
//!
//! serde_json (without its `float_roundtrip`/`arbitrary_precision` features, which the
//! workspace does not enable) neither keeps a number's text nor promises a correctly
//! rounded f64, so an f32 read through it is rounded twice (text -> f64 -> f32) and an
//! f64 may be an ulp off. This small parser keeps each number's decimal text, and the
//! tensor readers parse it once, directly in the tensor's dtype (float32 as f32, float64
//! as f64, int32 as i32), with Rust's correctly rounded `str::parse`.

// Each test binary that says `mod common;` uses a different subset of these helpers.
#![allow(dead_code)]

use ferrax::{Array, DType};
use std::collections::BTreeMap;
use std::fmt;

/// A parsed JSON value; numbers keep their decimal text. Objects are key-sorted (as
/// serde_json's default map), so iteration order does not depend on the file's order.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Num(String),
    Str(String),
    Arr(Vec<Json>),
    Obj(BTreeMap<String, Json>),
}

static NULL: Json = Json::Null;

impl Json {
    /// Parses a whole JSON document; the error names the byte offset and what was wrong.
    pub fn parse(text: &str) -> Result<Json, String> {
        let mut p = Parser {
            s: text.as_bytes(),
            at: 0,
        };
        let v = p.value()?;
        p.ws();
        if p.at != p.s.len() {
            return Err(format!("trailing characters at byte {}", p.at));
        }
        Ok(v)
    }

    pub fn as_array(&self) -> Option<&Vec<Json>> {
        match self {
            Json::Arr(v) => Some(v),
            _ => None,
        }
    }

    pub fn as_object(&self) -> Option<&BTreeMap<String, Json>> {
        match self {
            Json::Obj(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Json::Num(s) => s.parse().ok(),
            _ => None,
        }
    }

    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Json::Num(s) => s.parse().ok(),
            _ => None,
        }
    }
}

/// What indexes a [`Json`] (as serde_json's `Index`: `str` and `String` keys, `usize`
/// positions, and references to those).
pub trait Key {
    fn get<'a>(&self, v: &'a Json) -> Option<&'a Json>;
}

impl Key for str {
    fn get<'a>(&self, v: &'a Json) -> Option<&'a Json> {
        v.as_object().and_then(|m| m.get(self))
    }
}

impl Key for String {
    fn get<'a>(&self, v: &'a Json) -> Option<&'a Json> {
        Key::get(self.as_str(), v)
    }
}

impl Key for usize {
    fn get<'a>(&self, v: &'a Json) -> Option<&'a Json> {
        v.as_array().and_then(|a| a.get(*self))
    }
}

impl<K: Key + ?Sized> Key for &K {
    fn get<'a>(&self, v: &'a Json) -> Option<&'a Json> {
        Key::get(*self, v)
    }
}

/// Like serde_json: a missing key or position, or indexing a scalar, gives `Null`.
impl<K: Key> std::ops::Index<K> for Json {
    type Output = Json;
    fn index(&self, key: K) -> &Json {
        key.get(self).unwrap_or(&NULL)
    }
}

impl PartialEq<str> for Json {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == Some(other)
    }
}

impl PartialEq<&str> for Json {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == Some(*other)
    }
}

impl fmt::Display for Json {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Json::Null => write!(f, "null"),
            Json::Bool(b) => write!(f, "{b}"),
            Json::Num(s) => write!(f, "{s}"),
            Json::Str(s) => write!(f, "{s:?}"),
            Json::Arr(v) => {
                write!(f, "[")?;
                for (i, x) in v.iter().enumerate() {
                    if i > 0 {
                        write!(f, ",")?;
                    }
                    write!(f, "{x}")?;
                }
                write!(f, "]")
            }
            Json::Obj(m) => {
                write!(f, "{{")?;
                for (i, (k, x)) in m.iter().enumerate() {
                    if i > 0 {
                        write!(f, ",")?;
                    }
                    write!(f, "{k:?}:{x}")?;
                }
                write!(f, "}}")
            }
        }
    }
}

struct Parser<'a> {
    s: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while matches!(self.s.get(self.at), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn err<T>(&self, what: &str) -> Result<T, String> {
        Err(format!("{what} at byte {}", self.at))
    }

    fn eat(&mut self, c: u8) -> Result<(), String> {
        self.ws();
        if self.s.get(self.at) == Some(&c) {
            self.at += 1;
            Ok(())
        } else {
            self.err(&format!("expected '{}'", c as char))
        }
    }

    fn value(&mut self) -> Result<Json, String> {
        self.ws();
        match self.s.get(self.at) {
            Some(b'{') => self.object(),
            Some(b'[') => self.array(),
            Some(b'"') => Ok(Json::Str(self.string()?)),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => self.literal(),
            None => self.err("unexpected end of input"),
        }
    }

    fn literal(&mut self) -> Result<Json, String> {
        for (word, v) in [
            ("true", Json::Bool(true)),
            ("false", Json::Bool(false)),
            ("null", Json::Null),
        ] {
            if self.s[self.at..].starts_with(word.as_bytes()) {
                self.at += word.len();
                return Ok(v);
            }
        }
        self.err("unexpected character")
    }

    fn object(&mut self) -> Result<Json, String> {
        self.eat(b'{')?;
        let mut m = BTreeMap::new();
        self.ws();
        if self.s.get(self.at) == Some(&b'}') {
            self.at += 1;
            return Ok(Json::Obj(m));
        }
        loop {
            self.ws();
            let k = self.string()?;
            self.eat(b':')?;
            m.insert(k, self.value()?);
            self.ws();
            match self.s.get(self.at) {
                Some(b',') => self.at += 1,
                Some(b'}') => {
                    self.at += 1;
                    return Ok(Json::Obj(m));
                }
                _ => return self.err("expected ',' or '}'"),
            }
        }
    }

    fn array(&mut self) -> Result<Json, String> {
        self.eat(b'[')?;
        let mut v = Vec::new();
        self.ws();
        if self.s.get(self.at) == Some(&b']') {
            self.at += 1;
            return Ok(Json::Arr(v));
        }
        loop {
            v.push(self.value()?);
            self.ws();
            match self.s.get(self.at) {
                Some(b',') => self.at += 1,
                Some(b']') => {
                    self.at += 1;
                    return Ok(Json::Arr(v));
                }
                _ => return self.err("expected ',' or ']'"),
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let h = self
            .s
            .get(self.at..self.at + 4)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u32::from_str_radix(h, 16).ok());
        match h {
            Some(h) => {
                self.at += 4;
                Ok(h)
            }
            None => self.err("bad \\u escape"),
        }
    }

    fn string(&mut self) -> Result<String, String> {
        if self.s.get(self.at) != Some(&b'"') {
            return self.err("expected a string");
        }
        self.at += 1;
        let mut out = Vec::new();
        loop {
            let Some(&c) = self.s.get(self.at) else {
                return self.err("unterminated string");
            };
            self.at += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    let Some(&e) = self.s.get(self.at) else {
                        return self.err("unterminated escape");
                    };
                    self.at += 1;
                    let ch = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let mut u = self.hex4()?;
                            if (0xD800..0xDC00).contains(&u)
                                && self.s[self.at..].starts_with(b"\\u")
                            {
                                self.at += 2;
                                let lo = self.hex4()?;
                                u = 0x10000 + ((u - 0xD800) << 10) + (lo.wrapping_sub(0xDC00));
                            }
                            match char::from_u32(u) {
                                Some(ch) => ch,
                                None => return self.err("bad \\u code point"),
                            }
                        }
                        _ => return self.err("bad escape"),
                    };
                    out.extend_from_slice(ch.encode_utf8(&mut [0; 4]).as_bytes());
                }
                c => out.push(c),
            }
        }
        String::from_utf8(out).or_else(|_| self.err("string is not UTF-8"))
    }

    /// Checks the JSON number grammar and keeps the text as it stands in the file.
    fn number(&mut self) -> Result<Json, String> {
        let start = self.at;
        let digits = |p: &mut Self| {
            let from = p.at;
            while matches!(p.s.get(p.at), Some(b'0'..=b'9')) {
                p.at += 1;
            }
            p.at > from
        };
        if self.s.get(self.at) == Some(&b'-') {
            self.at += 1;
        }
        if !digits(self) {
            return self.err("expected digits");
        }
        if self.s.get(self.at) == Some(&b'.') {
            self.at += 1;
            if !digits(self) {
                return self.err("expected digits after '.'");
            }
        }
        if matches!(self.s.get(self.at), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.s.get(self.at), Some(b'+' | b'-')) {
                self.at += 1;
            }
            if !digits(self) {
                return self.err("expected exponent digits");
            }
        }
        let text = std::str::from_utf8(&self.s[start..self.at]).expect("ASCII digits");
        Ok(Json::Num(text.to_string()))
    }
}

/// Parses `tests/reference/<file>` (a copy of `/work/shared/reference/<file>`).
pub fn load(file: &str) -> Json {
    let path = format!("{}/tests/reference/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    Json::parse(&text).unwrap_or_else(|e| panic!("parsing {path}: {e}"))
}

/// The entry of a reference file's "functions" list named `name`.
pub fn function<'a>(doc: &'a Json, name: &str) -> &'a Json {
    doc["functions"]
        .as_array()
        .expect("a 'functions' list")
        .iter()
        .find(|f| f["name"] == name)
        .unwrap_or_else(|| panic!("no function {name}"))
}

/// The `(rtol, atol)` of `suggested_tolerances[key]`.
pub fn tol(doc: &Json, key: &str) -> (f64, f64) {
    let t = &doc["suggested_tolerances"][key];
    let get = |k: &str| {
        t[k].as_f64()
            .unwrap_or_else(|| panic!("suggested_tolerances {key} {k}: {}", t[k]))
    };
    (get("rtol"), get("atol"))
}

/// The shape of a `{dtype, shape, data}` tensor.
pub fn shape(t: &Json) -> Vec<usize> {
    t["shape"]
        .as_array()
        .unwrap_or_else(|| panic!("tensor without a shape list: {t}"))
        .iter()
        .map(|d| match d {
            Json::Num(s) => s.parse().unwrap_or_else(|_| panic!("bad dimension {s}")),
            d => panic!("bad dimension {d}"),
        })
        .collect()
}

/// The data leaves in row-major order (`data` is nested lists, or a bare number for
/// shape []).
fn leaves<'a>(v: &'a Json, out: &mut Vec<&'a Json>) {
    match v {
        Json::Arr(xs) => xs.iter().for_each(|x| leaves(x, out)),
        v => out.push(v),
    }
}

/// One float datum parsed straight from its text as `T`; the file's convention writes
/// non-finite values as the strings "nan", "inf", "-inf".
fn float<T: std::str::FromStr>(v: &Json, nan: T, inf: T, neg_inf: T) -> T {
    match v {
        Json::Num(s) => s.parse().unwrap_or_else(|_| panic!("bad float datum {s}")),
        Json::Str(s) => match s.as_str() {
            "nan" => nan,
            "inf" => inf,
            "-inf" => neg_inf,
            s => panic!("unexpected number string {s:?}"),
        },
        v => panic!("unexpected tensor datum {v}"),
    }
}

fn data<T>(t: &Json, parse: impl Fn(&Json) -> T) -> Vec<T> {
    let mut ls = Vec::new();
    leaves(&t["data"], &mut ls);
    ls.into_iter().map(parse).collect()
}

fn f64_datum(v: &Json) -> f64 {
    float(v, f64::NAN, f64::INFINITY, f64::NEG_INFINITY)
}

fn f32_datum(v: &Json) -> f32 {
    float(v, f32::NAN, f32::INFINITY, f32::NEG_INFINITY)
}

fn i32_datum(v: &Json) -> i32 {
    match v {
        Json::Num(s) => s.parse().unwrap_or_else(|_| panic!("bad int32 datum {s}")),
        v => panic!("unexpected int32 datum {v}"),
    }
}

fn dtype(t: &Json) -> &str {
    t["dtype"]
        .as_str()
        .unwrap_or_else(|| panic!("tensor without a dtype: {t}"))
}

/// A `{dtype, shape, data}` tensor in the file's dtype, each datum parsed once from its
/// text in that dtype (float32 as f32, float64 as f64, int32 as i32).
pub fn tensor(t: &Json) -> Array {
    let shape = shape(t);
    let a = match dtype(t) {
        "float64" => Array::from_vec(shape, data(t, f64_datum)),
        "float32" => Array::from_vec(shape, data(t, f32_datum)),
        "int32" => Array::from_vec(shape, data(t, i32_datum)),
        d => panic!("unexpected dtype {d}"),
    };
    a.unwrap_or_else(|e| panic!("tensor {t}: {e}"))
}

/// [`tensor`], asserting the file stores it as float64.
pub fn tensor_f64(t: &Json) -> Array {
    assert_eq!(dtype(t), "float64", "expected a float64 tensor");
    tensor(t)
}

/// [`tensor`] (exact in the file's dtype), then converted to `to` as JAX's own cast
/// would (e.g. float64 inputs of a float32 run).
pub fn tensor_as(t: &Json, to: DType) -> Array {
    let a = tensor(t);
    if a.dtype() == to {
        a
    } else {
        ferrax::prim::convert::convert(&a, to).unwrap_or_else(|e| panic!("tensor {t}: {e}"))
    }
}

/// The data of a float64 tensor (asserted), row-major.
pub fn f64_data(t: &Json) -> Vec<f64> {
    assert_eq!(dtype(t), "float64", "expected a float64 tensor");
    data(t, f64_datum)
}

/// The data of a float tensor as f64: float64 parsed as f64, float32 parsed as f32 and
/// then widened (exactly), so a float32 reference is the f32 JAX wrote, not its decimal.
pub fn widened_data(t: &Json) -> Vec<f64> {
    match dtype(t) {
        "float64" => data(t, f64_datum),
        "float32" => data(t, f32_datum).into_iter().map(f64::from).collect(),
        d => panic!("expected a float tensor, got {d}"),
    }
}
