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

/// Runs a culex tool on its own thread; the receiver yields its outcome.
pub fn spawn_culex(tool: Tool, args: Vec<String>) -> std::sync::mpsc::Receiver<Outcome> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let _ = tx.send(culex(tool, &args));
    });
    rx
}

/// Publishes with Debian's mosquitto_pub (a reference peer) to the broker
/// on `port`; whether it succeeded.
pub fn mosquitto_pub(port: u16, args: &[&str]) -> bool {
    let mut cmd = Command::new(culex_testkit::tool("mosquitto_pub"));
    cmd.args(["-p", &port.to_string()]).args(args);
    culex_testkit::run_with_timeout(&mut cmd, Duration::from_secs(10))
        .status
        .success()
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

/// A `Write` whose bytes another thread can watch while a tool runs.
#[derive(Clone, Default)]
pub struct SharedBuf(pub std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl SharedBuf {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("lock")).into_owned()
    }
}

/// Runs a culex tool on its own thread, its stdout watchable as it runs;
/// the receiver yields the exit code and stderr at the end.
pub fn spawn_watched(tool: Tool, args: &[&str]) -> (std::sync::mpsc::Receiver<Outcome>, SharedBuf) {
    let args: Vec<OsString> = args.iter().map(OsString::from).collect();
    let out = SharedBuf::default();
    let (tx, rx) = std::sync::mpsc::channel();
    let mut stdout = out.clone();
    std::thread::spawn(move || {
        let mut input: &[u8] = b"";
        let mut stderr = Vec::new();
        let io = culex_tools::Io {
            stdin: &mut input,
            stdout: &mut stdout,
            stderr: &mut stderr,
        };
        let code = culex_tools::run_with(tool, &args, b"", io);
        let _ = tx.send(Outcome {
            code: i32::from(code),
            stdout: Vec::new(),
            stderr,
        });
    });
    (rx, out)
}

/// Debian's mosquitto on a port chosen by the caller (so that it can be
/// restarted on the same port); killed on drop.
pub struct FixedMosquitto {
    _dir: tempfile::TempDir,
    _child: culex_testkit::ChildGuard,
}

impl FixedMosquitto {
    pub fn start(port: u16, extra: &str) -> FixedMosquitto {
        let dir = tempfile::tempdir().expect("tempdir");
        let conf = dir.path().join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!("listener {port} 127.0.0.1\nallow_anonymous true\n{extra}\n"),
        )
        .expect("conf");
        let child = Command::new(culex_testkit::tool("mosquitto"))
            .arg("-c")
            .arg(&conf)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start mosquitto");
        let guard = culex_testkit::ChildGuard(child);
        culex_testkit::wait_for_port(port, Duration::from_secs(10));
        FixedMosquitto {
            _dir: dir,
            _child: guard,
        }
    }
}
