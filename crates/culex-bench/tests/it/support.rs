//! Running `culex bench` in-process and reading its JSON summary.

use std::ffi::OsString;
use std::process::ExitCode;

use serde_json::Value;

/// Runs `culex bench ARGS` and returns its exit code and standard output.
pub fn bench(args: &[&str]) -> (ExitCode, String) {
    let args: Vec<OsString> = args.iter().map(OsString::from).collect();
    let mut out = Vec::new();
    let code = culex_bench::run_cli(args, &mut out);
    (code, String::from_utf8(out).expect("summary is UTF-8"))
}

/// Runs `culex bench ARGS --json --quiet -p PORT`, expects success, and
/// returns the parsed summary.
pub fn bench_json(port: u16, args: &[&str]) -> Value {
    let port = port.to_string();
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--json", "--quiet", "-p", &port]);
    let (code, out) = bench(&all);
    let summary: Value = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("--json output does not parse ({e}): {out}"));
    assert_eq!(
        code,
        ExitCode::SUCCESS,
        "culex bench {all:?} failed: {summary:#}"
    );
    summary
}

/// A number in the summary, by JSON pointer.
pub fn num(summary: &Value, pointer: &str) -> f64 {
    summary
        .pointer(pointer)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("{pointer} missing or not a number in {summary:#}"))
}

/// An integer count in the summary, by JSON pointer.
pub fn count(summary: &Value, pointer: &str) -> u64 {
    summary
        .pointer(pointer)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("{pointer} missing or not a count in {summary:#}"))
}
