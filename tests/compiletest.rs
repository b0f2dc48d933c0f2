//! Compile tests of `#[process_task]`: every rejected form gives one clear error at the offending
//! token (`tests/ui`, with checked-in `.stderr` files), and every accepted form compiles and runs
//! (`tests/ui-pass`).

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
    t.pass("tests/ui-pass/*.rs");
}
