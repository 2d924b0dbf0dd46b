//! `culex broker` without the rest of the `culex` binary:
//! `cargo run -p culex-broker --example broker -- -v -p 1884`.

fn main() -> std::process::ExitCode {
    culex_broker::cli::main(std::env::args_os().skip(1).collect())
}
