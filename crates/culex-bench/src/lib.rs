//! culex bench: an MQTT load generator.

/// Entry point of `culex bench`; `args` excludes the program and command names.
pub fn main(args: Vec<std::ffi::OsString>) -> std::process::ExitCode {
    let _ = args;
    eprintln!("culex bench: not implemented yet");
    std::process::ExitCode::from(1)
}
