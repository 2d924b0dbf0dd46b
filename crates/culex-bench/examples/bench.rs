//! `culex bench` on its own, without the rest of the `culex` binary:
//! `cargo run --release -p culex-bench --example bench -- pairs -q 1 -d 5s`.

fn main() -> std::process::ExitCode {
    culex_bench::main(std::env::args_os().skip(1).collect())
}
