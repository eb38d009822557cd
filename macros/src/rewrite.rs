//! Control-flow rewriting of staged bodies (`#[jit]`, `#[grad]`, `#[vmap]`): `if`, `while`
//! and `for i in lo..hi` become calls of `::ferrax::__rt::{if_, while_, for_}` whose traits
//! pick, by the condition's type, plain Rust (`bool`, integers) or a staged `cond` /
//! `while_loop` / `fori_loop` (scalar tensors). A macro cannot know types, so every
//! rewritable form is rewritten and the type decides.
//!
//! Rules (the user-facing summary is on `#[jit]`):
//! - The statement becomes one closure `|branch_or_phase, carried| ..` holding the original
//!   code with the condition replaced, so moves and borrows behave as in the original
//!   statement. The *carried* variables are the local variables declared outside and
//!   assigned inside (`x = ..`, `x += ..`, `(a, b) = ..`); they go in and come back out as a
//!   nested tuple `(a, (b, ()))` (a tree when they are tensors) and are written back.
//! - Forms a closure cannot express keep their Rust syntax, and the condition (or upper
//!   bound) goes through a check that only `bool` (plain integers) passes, whose error
//!   names the form and what to write instead: `return`, `?`, `.await`, or a `break` /
//!   `continue` leaving the statement; assignments to fields, indices or through
//!   references; an `if` initializing a variable declared without a value; loops that assign
//!   no outer variable.
//! - `if let`, `while let`, let chains, `for` over anything but `lo..hi`, a `for` whose upper
//!   bound is an integer literal, statements with attributes, and code in nested items and
//!   macro invocations are left alone.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{quote, quote_spanned};
use std::collections::HashMap;
use syn::spanned::Spanned;
use syn::visit_mut::{self, VisitMut};
use syn::{BinOp, Block, Expr, Ident, Item, Pat, RangeLimits, Stmt};

/// Rewrites the control flow of a staged function's body (see the module docs).
pub(crate) fn rewrite_block(mut block: Block) -> Block {
    let mut r = Rewriter { scopes: Vec::new() };
    r.visit_block_mut(&mut block);
    block
}

/// [`rewrite_block`] applied to a function's body.
pub(crate) fn rewrite_fn(mut func: syn::ItemFn) -> syn::ItemFn {
    func.block = Box::new(rewrite_block(*func.block));
    func
}

// ---- analysis -----------------------------------------------------------------------------

/// What a branch or loop body does that decides how it can be rewritten.
#[derive(Default)]
struct Facts {
    /// Outer local variables assigned, in first-assignment order.
    assigned: Vec<Ident>,
    /// An assignment to a field, an index or through a reference rooted outside.
    place: bool,
    /// `return`, `?`, `.await`, or a `break` / `continue` leaving the statement.
    escape: bool,
}

/// The names a pattern binds.
fn pat_names(p: &Pat, out: &mut Vec<String>) {
    match p {
        Pat::Ident(i) => {
            out.push(i.ident.to_string());
            if let Some((_, sub)) = &i.subpat {
                pat_names(sub, out);
            }
        }
        Pat::Or(o) => o.cases.iter().for_each(|c| pat_names(c, out)),
        Pat::Paren(x) => pat_names(&x.pat, out),
        Pat::Reference(r) => pat_names(&r.pat, out),
        Pat::Slice(s) => s.elems.iter().for_each(|e| pat_names(e, out)),
        Pat::Struct(s) => s.fields.iter().for_each(|f| pat_names(&f.pat, out)),
        Pat::Tuple(t) => t.elems.iter().for_each(|e| pat_names(e, out)),
        Pat::TupleStruct(t) => t.elems.iter().for_each(|e| pat_names(e, out)),
        Pat::Type(t) => pat_names(&t.pat, out),
        _ => {}
    }
}

/// Walks a branch or loop body collecting [`Facts`]. Nested closures and async blocks own
/// their `return`s and loops; nested items are not looked at.
struct Scan {
    scopes: Vec<Vec<String>>,
    loop_depth: usize,
    labels: Vec<String>,
    closure_depth: usize,
    facts: Facts,
}

impl Scan {
    fn new(bound: Vec<String>) -> Scan {
        Scan {
            scopes: vec![bound],
            loop_depth: 0,
            labels: Vec::new(),
            closure_depth: 0,
            facts: Facts::default(),
        }
    }

    fn bound(&self, name: &str) -> bool {
        self.scopes.iter().any(|s| s.iter().any(|n| n == name))
    }

    fn bind(&mut self, p: &Pat) {
        let mut names = Vec::new();
        pat_names(p, &mut names);
        if let Some(s) = self.scopes.last_mut() {
            s.extend(names);
        }
    }

    fn escape(&mut self) {
        if self.closure_depth == 0 {
            self.facts.escape = true;
        }
    }

    fn leaves(&mut self, label: Option<&syn::Lifetime>) {
        if self.closure_depth > 0 {
            return;
        }
        let leaves = match label {
            Some(l) => !self.labels.contains(&l.ident.to_string()),
            None => self.loop_depth == 0,
        };
        if leaves {
            self.facts.escape = true;
        }
    }

    /// Records the targets of an assignment's left-hand side.
    fn target(&mut self, e: &Expr) {
        match e {
            Expr::Path(p) if p.qself.is_none() && p.path.get_ident().is_some() => {
                let id = p
                    .path
                    .get_ident()
                    .cloned()
                    .unwrap_or_else(|| Ident::new("_", Span::call_site()));
                let name = id.to_string();
                if !self.bound(&name) && !self.facts.assigned.iter().any(|a| *a == name) {
                    self.facts.assigned.push(id);
                }
            }
            Expr::Tuple(t) => t.elems.iter().for_each(|e| self.target(e)),
            Expr::Array(a) => a.elems.iter().for_each(|e| self.target(e)),
            Expr::Paren(p) => self.target(&p.expr),
            Expr::Struct(s) => s.fields.iter().for_each(|f| self.target(&f.expr)),
            Expr::Call(c) => c.args.iter().for_each(|e| self.target(e)),
            Expr::Infer(_) | Expr::Range(_) => {}
            other => {
                // A place: allowed when its root is a variable of the body itself.
                if !root_ident(other).is_some_and(|r| self.bound(&r)) {
                    self.facts.place = true;
                }
            }
        }
    }

    fn scan_tokens(&mut self, ts: TokenStream) {
        for tt in ts {
            match tt {
                TokenTree::Ident(i) if i == "return" => self.escape(),
                TokenTree::Ident(i)
                    if (i == "break" || i == "continue") && self.loop_depth == 0 =>
                {
                    self.escape()
                }
                TokenTree::Punct(p) if p.as_char() == '?' => self.escape(),
                TokenTree::Group(g) => self.scan_tokens(g.stream()),
                _ => {}
            }
        }
    }

    fn in_loop(&mut self, label: Option<&syn::Label>, f: impl FnOnce(&mut Self)) {
        let pushed = label.map(|l| self.labels.push(l.name.ident.to_string()));
        self.loop_depth += 1;
        f(self);
        self.loop_depth -= 1;
        if pushed.is_some() {
            self.labels.pop();
        }
    }

    fn in_closure(&mut self, params: &[&Pat], f: impl FnOnce(&mut Self)) {
        let saved = (self.loop_depth, std::mem::take(&mut self.labels));
        self.loop_depth = 0;
        self.closure_depth += 1;
        self.scopes.push(Vec::new());
        for p in params {
            self.bind(p);
        }
        f(self);
        self.scopes.pop();
        self.closure_depth -= 1;
        (self.loop_depth, self.labels) = saved;
    }
}

/// The variable at the root of a place expression (`a` of `a.b[i].c`, `*a`).
fn root_ident(e: &Expr) -> Option<String> {
    match e {
        Expr::Path(p) if p.qself.is_none() => p.path.get_ident().map(|i| i.to_string()),
        Expr::Field(f) => root_ident(&f.base),
        Expr::Index(i) => root_ident(&i.expr),
        Expr::Unary(u) => root_ident(&u.expr),
        Expr::Paren(p) => root_ident(&p.expr),
        Expr::MethodCall(m) => root_ident(&m.receiver),
        _ => None,
    }
}

fn is_assign_op(op: &BinOp) -> bool {
    matches!(
        op,
        BinOp::AddAssign(_)
            | BinOp::SubAssign(_)
            | BinOp::MulAssign(_)
            | BinOp::DivAssign(_)
            | BinOp::RemAssign(_)
            | BinOp::BitXorAssign(_)
            | BinOp::BitAndAssign(_)
            | BinOp::BitOrAssign(_)
            | BinOp::ShlAssign(_)
            | BinOp::ShrAssign(_)
    )
}

impl VisitMut for Scan {
    fn visit_item_mut(&mut self, _: &mut Item) {}

    fn visit_block_mut(&mut self, b: &mut Block) {
        self.scopes.push(Vec::new());
        for s in &mut b.stmts {
            self.visit_stmt_mut(s);
        }
        self.scopes.pop();
    }

    fn visit_stmt_mut(&mut self, s: &mut Stmt) {
        match s {
            Stmt::Local(l) => {
                if let Some(init) = &mut l.init {
                    self.visit_expr_mut(&mut init.expr);
                    if let Some((_, d)) = &mut init.diverge {
                        self.visit_expr_mut(d);
                    }
                }
                self.bind(&l.pat);
            }
            Stmt::Macro(m) => self.scan_tokens(m.mac.tokens.clone()),
            Stmt::Item(_) => {}
            Stmt::Expr(e, _) => self.visit_expr_mut(e),
        }
    }

    fn visit_expr_mut(&mut self, e: &mut Expr) {
        match e {
            Expr::Return(r) => {
                self.escape();
                if let Some(x) = &mut r.expr {
                    self.visit_expr_mut(x);
                }
            }
            Expr::Try(t) => {
                self.escape();
                self.visit_expr_mut(&mut t.expr);
            }
            Expr::Await(a) => {
                self.escape();
                self.visit_expr_mut(&mut a.base);
            }
            Expr::Break(b) => {
                self.leaves(b.label.as_ref());
                if let Some(x) = &mut b.expr {
                    self.visit_expr_mut(x);
                }
            }
            Expr::Continue(c) => self.leaves(c.label.as_ref()),
            Expr::While(w) => {
                let label = w.label.clone();
                self.in_loop(label.as_ref(), |s| {
                    s.visit_expr_mut(&mut w.cond);
                    s.visit_block_mut(&mut w.body);
                });
            }
            Expr::Loop(l) => {
                let label = l.label.clone();
                self.in_loop(label.as_ref(), |s| s.visit_block_mut(&mut l.body));
            }
            Expr::ForLoop(f) => {
                self.visit_expr_mut(&mut f.expr);
                let label = f.label.clone();
                self.scopes.push(Vec::new());
                self.bind(&f.pat);
                self.in_loop(label.as_ref(), |s| s.visit_block_mut(&mut f.body));
                self.scopes.pop();
            }
            Expr::Block(b) if b.label.is_some() => {
                let l = b.label.as_ref().map(|l| l.name.ident.to_string());
                self.labels.extend(l);
                self.visit_block_mut(&mut b.block);
                self.labels.pop();
            }
            Expr::Closure(c) => {
                let params: Vec<Pat> = c.inputs.iter().cloned().collect();
                let refs: Vec<&Pat> = params.iter().collect();
                self.in_closure(&refs, |s| s.visit_expr_mut(&mut c.body));
            }
            Expr::Async(a) => self.in_closure(&[], |s| s.visit_block_mut(&mut a.block)),
            Expr::Assign(a) => {
                self.target(&a.left);
                self.visit_expr_mut(&mut a.right);
            }
            Expr::Binary(b) if is_assign_op(&b.op) => {
                self.target(&b.left);
                self.visit_expr_mut(&mut b.right);
            }
            Expr::Macro(m) => self.scan_tokens(m.mac.tokens.clone()),
            Expr::Match(m) => {
                self.visit_expr_mut(&mut m.expr);
                for arm in &mut m.arms {
                    self.scopes.push(Vec::new());
                    self.bind(&arm.pat);
                    if let Some((_, g)) = &mut arm.guard {
                        self.visit_expr_mut(g);
                    }
                    self.visit_expr_mut(&mut arm.body);
                    self.scopes.pop();
                }
            }
            Expr::Let(l) => {
                self.visit_expr_mut(&mut l.expr);
                self.bind(&l.pat);
            }
            Expr::Const(_) => {}
            _ => visit_mut::visit_expr_mut(self, e),
        }
    }
}

/// Facts of these pieces of code, with `bound` names already local to them.
fn scan(bound: Vec<String>, exprs: &[&Expr], blocks: &[&Block]) -> Facts {
    let mut s = Scan::new(bound);
    for e in exprs {
        s.visit_expr_mut(&mut (*e).clone());
    }
    for b in blocks {
        s.visit_block_mut(&mut (*b).clone());
    }
    s.facts
}

fn has_let(e: &Expr) -> bool {
    match e {
        Expr::Let(_) => true,
        Expr::Binary(b) => has_let(&b.left) || has_let(&b.right),
        Expr::Paren(p) => has_let(&p.expr),
        _ => false,
    }
}

// ---- generation ---------------------------------------------------------------------------

fn local(name: &str) -> Ident {
    Ident::new(name, Span::mixed_site())
}

/// `(a, (b, ()))` over the carried names, and the binding pattern `(mut a, (mut b, ()))`.
fn carry_tokens(names: &[Ident]) -> (TokenStream, TokenStream) {
    let mut value = quote!(());
    let mut pat = quote!(());
    for n in names.iter().rev() {
        value = quote!((#n, #value));
        pat = quote!((mut #n, #pat));
    }
    (value, pat)
}

/// Writes the carried values of `r` (at `r.<prefix>.0`, `r.<prefix>.1.0`, ...) back.
fn write_back(r: &Ident, prefix: TokenStream, names: &[Ident]) -> TokenStream {
    if names.is_empty() {
        return quote!();
    }
    let mut path = prefix;
    let mut stmts = Vec::new();
    for n in names {
        stmts.push(quote!(#n = #r #path .0;));
        path = quote!(#path .1);
    }
    quote! {
        #[allow(unused_assignments)]
        { #(#stmts)* }
    }
}

fn check_call(check: &str, e: &Expr) -> Expr {
    let f = Ident::new(check, Span::call_site());
    let span = e.span();
    syn::parse_quote_spanned!(span=> ::ferrax::__rt::#f(#e))
}

/// Scopes of the enclosing blocks: for each name, whether its latest `let` had no value.
struct Rewriter {
    scopes: Vec<HashMap<String, bool>>,
}

impl Rewriter {
    fn uninit(&self, name: &str) -> bool {
        self.scopes
            .iter()
            .rev()
            .find_map(|s| s.get(name).copied())
            .unwrap_or(false)
    }

    fn rewrite_if(&mut self, e: &mut Expr) {
        let Expr::If(i) = e else { return };
        let mut exprs: Vec<&Expr> = Vec::new();
        if let Some((_, els)) = &i.else_branch {
            exprs.push(els);
        }
        let facts = scan(Vec::new(), &exprs, &[&i.then_branch]);
        self.visit_expr_mut(&mut i.cond);
        self.visit_block_mut(&mut i.then_branch);
        if let Some((_, els)) = &mut i.else_branch {
            self.visit_expr_mut(els);
        }
        let check = if facts.escape {
            Some("if_no_escape")
        } else if facts.place {
            Some("if_no_place")
        } else if facts.assigned.iter().any(|a| self.uninit(&a.to_string())) {
            Some("if_no_init")
        } else {
            None
        };
        if let Some(check) = check {
            *i.cond = check_call(check, &i.cond);
            return;
        }
        let (r, b, k, v) = (
            local("__ferrax_r"),
            local("__ferrax_b"),
            local("__ferrax_k"),
            local("__ferrax_v"),
        );
        let (carry, pat) = carry_tokens(&facts.assigned);
        let cond = &i.cond;
        let then = &i.then_branch;
        let els = i.else_branch.as_ref().map(|(_, e)| quote!(else #e));
        let back = write_back(&r, quote!(.1), &facts.assigned);
        let closure = quote! {
            |#b: bool, #k| {
                let #pat = #k;
                let #v = if #b #then #els;
                (#v, #carry)
            }
        };
        let value = quote_spanned!(cond.span()=> ::ferrax::__rt::cond_value(&(#cond)));
        // Spanned at the condition, so trait errors on the call point at it.
        let call = quote_spanned!(cond.span()=> ::ferrax::__rt::if_(#value, #carry, #closure));
        *e = syn::parse_quote! {
            {
                let #r = #call;
                #back
                #r.0
            }
        };
    }

    fn rewrite_while(&mut self, e: &mut Expr) {
        let Expr::While(w) = e else { return };
        let facts = scan(Vec::new(), &[&w.cond], &[&w.body]);
        self.visit_expr_mut(&mut w.cond);
        self.visit_block_mut(&mut w.body);
        let check = if facts.escape {
            Some("while_no_escape")
        } else if facts.place {
            Some("while_no_place")
        } else if facts.assigned.is_empty() {
            Some("while_no_carry")
        } else {
            None
        };
        if let Some(check) = check {
            *w.cond = check_call(check, &w.cond);
            return;
        }
        let (r, p, k) = (
            local("__ferrax_r"),
            local("__ferrax_p"),
            local("__ferrax_k"),
        );
        let (carry, pat) = carry_tokens(&facts.assigned);
        let cond = &w.cond;
        let body = &w.body;
        let back = write_back(&r, quote!(), &facts.assigned);
        let value = quote_spanned!(cond.span()=> ::ferrax::__rt::cond_value(&(#cond)));
        let closure = quote! {
            |#p: bool, #k| {
                let #pat = #k;
                if #p {
                    (::std::option::Option::Some(#value), #carry)
                } else {
                    let () = #body;
                    (::std::option::Option::None, #carry)
                }
            }
        };
        let call = quote_spanned!(cond.span()=> ::ferrax::__rt::while_(#carry, #closure));
        *e = syn::parse_quote! {
            {
                let #r = #call;
                #back
            }
        };
    }

    fn rewrite_for(&mut self, e: &mut Expr) {
        let Expr::ForLoop(f) = e else { return };
        // Only `lo..hi` with a bound that is not an integer literal (a literal is never a
        // tensor, so such a loop stays as written).
        let rewritable = matches!(
            &*f.expr,
            Expr::Range(syn::ExprRange { start: Some(_), end: Some(hi), limits: RangeLimits::HalfOpen(_), .. })
                if !matches!(&**hi, Expr::Lit(_))
        );
        if !rewritable {
            return visit_mut::visit_expr_mut(self, e);
        }
        let mut bound = Vec::new();
        pat_names(&f.pat, &mut bound);
        let facts = scan(bound, &[], &[&f.body]);
        self.visit_expr_mut(&mut f.expr);
        self.visit_block_mut(&mut f.body);
        let f_expr = &mut *f.expr;
        let Expr::Range(range) = f_expr.clone() else {
            return;
        };
        let (Some(lo), Some(hi)) = (range.start, range.end) else {
            return;
        };
        let check = if facts.escape {
            Some("for_no_escape")
        } else if facts.place {
            Some("for_no_place")
        } else if facts.assigned.is_empty() {
            Some("for_no_carry")
        } else {
            None
        };
        if let Some(check) = check {
            let f = Ident::new(check, Span::call_site());
            let span = hi.span();
            let checked: Expr = syn::parse_quote_spanned!(span=> ::ferrax::__rt::#f(#lo, #hi));
            *f_expr = checked;
            return;
        }
        let (r, k) = (local("__ferrax_r"), local("__ferrax_k"));
        let (carry, pat) = carry_tokens(&facts.assigned);
        let ipat = &f.pat;
        let body = &f.body;
        let back = write_back(&r, quote!(), &facts.assigned);
        let closure = quote! {
            |#ipat, #k| {
                let #pat = #k;
                let () = #body;
                #carry
            }
        };
        let call = quote_spanned!(hi.span()=> ::ferrax::__rt::for_(#lo, #hi, #carry, #closure));
        *e = syn::parse_quote! {
            {
                let #r = #call;
                #back
            }
        };
    }
}

impl VisitMut for Rewriter {
    fn visit_item_mut(&mut self, _: &mut Item) {}

    // Types (array lengths) and generic arguments (const expressions) are const contexts.
    fn visit_type_mut(&mut self, _: &mut syn::Type) {}

    fn visit_generic_argument_mut(&mut self, _: &mut syn::GenericArgument) {}

    fn visit_block_mut(&mut self, b: &mut Block) {
        self.scopes.push(HashMap::new());
        for s in &mut b.stmts {
            self.visit_stmt_mut(s);
            if let Stmt::Local(l) = s {
                let mut names = Vec::new();
                pat_names(&l.pat, &mut names);
                let uninit = l.init.is_none();
                if let Some(scope) = self.scopes.last_mut() {
                    for n in names {
                        scope.insert(n, uninit);
                    }
                }
            }
        }
        self.scopes.pop();
    }

    fn visit_expr_mut(&mut self, e: &mut Expr) {
        match e {
            Expr::If(i) if i.attrs.is_empty() && !has_let(&i.cond) => self.rewrite_if(e),
            Expr::While(w) if w.attrs.is_empty() && !has_let(&w.cond) => self.rewrite_while(e),
            Expr::ForLoop(f) if f.attrs.is_empty() => self.rewrite_for(e),
            // Array lengths and inline consts are const contexts: nothing to stage there.
            Expr::Repeat(r) => self.visit_expr_mut(&mut r.expr),
            Expr::Const(_) => {}
            _ => visit_mut::visit_expr_mut(self, e),
        }
    }
}
