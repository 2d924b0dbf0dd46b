//! Test support shared by the integration tests of every culex crate.
//!
//! Tests run in parallel, so each one takes its own free port on 127.0.0.1
//! and every process it starts is killed when its guard drops. Third-party
//! peers (Debian's mosquitto and mosquitto-clients, PyPI's paho-mqtt) are
//! installed by `scripts/test`; a test that finds one missing fails with a
//! message saying how to install it, and never passes silently.

pub mod pki;

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A port that was free on 127.0.0.1 a moment ago. Prefer binding port 0
/// in-process; use this only to configure a separate process.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

/// Waits until something accepts TCP connections on `127.0.0.1:port`.
pub fn wait_for_port(port: u16, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("nothing listening on 127.0.0.1:{port} after {timeout:?}");
}

/// The path of a third-party program, or a panic that says how to get it.
pub fn tool(name: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    });
    match found {
        Some(path) => path,
        None => panic!("{name} is not installed: run scripts/test, which installs the test peers"),
    }
}

/// A `python3` command that can import paho-mqtt, or a panic saying how to get it.
pub fn python_with_paho() -> Command {
    let python = tool("python3");
    let ok = Command::new(&python)
        .args(["-c", "import paho.mqtt.client"])
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "paho-mqtt is not installed: run scripts/test, which installs the test peers"
    );
    Command::new(python)
}

/// A child process killed and reaped when dropped.
#[derive(Debug)]
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A real Debian mosquitto broker on a free port of 127.0.0.1.
#[derive(Debug)]
pub struct Mosquitto {
    /// The port it listens on.
    pub port: u16,
    /// Its working directory (config, password files), removed on drop.
    pub dir: tempfile::TempDir,
    _child: ChildGuard,
}

impl Mosquitto {
    /// Starts mosquitto with `listener PORT 127.0.0.1`, `allow_anonymous true`
    /// unless `extra_config` says otherwise, and `extra_config` appended.
    pub fn start(extra_config: &str) -> Mosquitto {
        let binary = tool("mosquitto");
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let conf = dir.path().join("mosquitto.conf");
        let mut file = std::fs::File::create(&conf).expect("write mosquitto.conf");
        writeln!(file, "listener {port} 127.0.0.1").expect("write");
        if !extra_config.contains("allow_anonymous") {
            writeln!(file, "allow_anonymous true").expect("write");
        }
        writeln!(file, "{extra_config}").expect("write");
        drop(file);
        let child = Command::new(binary)
            .arg("-c")
            .arg(&conf)
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mosquitto");
        let guard = ChildGuard(child);
        wait_for_port(port, Duration::from_secs(10));
        Mosquitto {
            port,
            dir,
            _child: guard,
        }
    }

    /// A file path inside the broker's working directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// Runs a command to completion with a time limit, returning its output.
/// Kills it and panics when it overruns, so no test can hang.
pub fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> std::process::Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(timeout) {
        Ok(output) => output.expect("wait"),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("{cmd:?} did not finish within {timeout:?}");
        }
    }
}

/// Writes `contents` to `dir/name` and returns the path.
pub fn write_file(dir: &Path, name: &str, contents: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write file");
    path
}

/// Makes, with Debian's openssl, a test CA (`ca.crt`, `ca.key`) and a server
/// certificate it signed (`server.crt`, `server.key`) in `dir`, valid for two
/// days for the names in `subject_alt_names` (e.g. `DNS:localhost`).
/// Readable by mosquitto, which drops root before it reads its key.
pub fn tls_certificates(dir: &Path, subject_alt_names: &str) {
    let run = |args: &[&str]| {
        let mut cmd = Command::new(tool("openssl"));
        cmd.current_dir(dir).args(args);
        let out = run_with_timeout(&mut cmd, Duration::from_secs(30));
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let key = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend_from_slice(&key);
    ca.extend_from_slice(&[
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=culex test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    run(&ca);
    let mut csr = vec!["req"];
    csr.extend_from_slice(&key);
    csr.extend_from_slice(&[
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    run(&csr);
    write_file(
        dir,
        "ext.cnf",
        &format!("subjectAltName={subject_alt_names}\nbasicConstraints=CA:FALSE\n"),
    );
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
    use std::os::unix::fs::PermissionsExt;
    for (path, mode) in [(dir.to_path_buf(), 0o755), (dir.join("server.key"), 0o644)] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }
}
