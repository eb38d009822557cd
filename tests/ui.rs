//! Compile-fail UI tests: shape mistakes and macro misuse must be compile errors at the
//! user's line with readable messages. Each case is `tests/ui/*.rs` with its `.stderr`.
//! Regenerate the expected output with `TRYBUILD=overwrite cargo test --test ui`.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
    // Having a `pass` case makes trybuild run `cargo build` instead of `cargo check`, which
    // the post-monomorphization `const` assertions of reshape/concat/... need to fire.
    t.pass("tests/ui/pass/*.rs");
}
