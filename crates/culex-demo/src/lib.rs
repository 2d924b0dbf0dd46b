//! Simulated ESP32 boards and the browser demo of the MQTT tutorial.

/// Entry point of `culex device`; `args` excludes the program and command names.
pub fn device_main(args: Vec<std::ffi::OsString>) -> std::process::ExitCode {
    let _ = args;
    eprintln!("culex device: not implemented yet");
    std::process::ExitCode::from(1)
}

/// Entry point of `culex demo`; `args` excludes the program and command names.
pub fn demo_main(args: Vec<std::ffi::OsString>) -> std::process::ExitCode {
    let _ = args;
    eprintln!("culex demo: not implemented yet");
    std::process::ExitCode::from(1)
}
