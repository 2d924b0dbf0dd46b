//! Helpers: run a culex tool in-process, run a mosquitto tool as a process.

use culex_tools::args::Tool;
use std::ffi::OsString;
use std::process::Command;
use std::time::Duration;

/// What a run printed and returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Outcome {
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// Runs a culex tool in-process, with no defaults file and empty stdin.
pub fn culex(tool: Tool, args: &[&str]) -> Outcome {
    culex_with(tool, args, b"", b"")
}

/// Runs a culex tool in-process with a defaults file and stdin.
pub fn culex_with(tool: Tool, args: &[&str], defaults: &[u8], stdin: &[u8]) -> Outcome {
    let args: Vec<OsString> = args.iter().map(OsString::from).collect();
    let mut input = stdin;
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    let io = culex_tools::Io {
        stdin: &mut input,
        stdout: &mut stdout,
        stderr: &mut stderr,
    };
    let code = culex_tools::run_with(tool, &args, defaults, io);
    Outcome {
        code: i32::from(code),
        stdout,
        stderr,
    }
}

/// The mosquitto tool matching `tool`.
pub fn mosquitto_name(tool: Tool) -> &'static str {
    match tool {
        Tool::Pub => "mosquitto_pub",
        Tool::Sub => "mosquitto_sub",
        Tool::Rr => "mosquitto_rr",
    }
}

/// Runs Debian's mosquitto tool with an empty config directory, so that no
/// user defaults file interferes, and mosquitto's name replaced by culex's
/// in what it prints.
pub fn mosquitto(tool: Tool, args: &[&str]) -> Outcome {
    let home = tempfile::tempdir().expect("tempdir");
    let mut cmd = Command::new(culex_testkit::tool(mosquitto_name(tool)));
    cmd.args(args)
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path());
    let output = culex_testkit::run_with_timeout(&mut cmd, Duration::from_secs(10));
    let rename = |bytes: Vec<u8>| {
        String::from_utf8_lossy(&bytes)
            .replace(mosquitto_name(tool), tool.command())
            .into_bytes()
    };
    Outcome {
        code: output.status.code().unwrap_or(-1),
        stdout: rename(output.stdout),
        stderr: rename(output.stderr),
    }
}
