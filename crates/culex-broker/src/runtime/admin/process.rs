//! The broker process's own resources, read from Linux's /proc (the
//! `process_*` metrics of Prometheus's client libraries). Elsewhere, or
//! when a file cannot be read, the values are absent.

/// Clock ticks per second in /proc's CPU times: `USER_HZ`, 100 on every
/// Linux architecture (the kernel converts to it for user space).
const TICKS_PER_SECOND: f64 = 100.0;

/// What /proc says of this process.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct ProcessStats {
    /// User and system CPU time, in seconds.
    pub cpu_seconds: Option<f64>,
    /// Resident memory, in bytes.
    pub resident_bytes: Option<u64>,
    /// Virtual memory, in bytes.
    pub virtual_bytes: Option<u64>,
    /// Open file descriptors.
    pub open_fds: Option<u64>,
    /// The open-files limit.
    pub max_fds: Option<u64>,
    /// When the process started, in seconds since the Unix epoch.
    pub start_time_seconds: Option<f64>,
}

impl ProcessStats {
    /// Reads them now.
    pub fn read() -> ProcessStats {
        let stat = std::fs::read_to_string("/proc/self/stat").ok();
        let status = std::fs::read_to_string("/proc/self/status").ok();
        let fields = stat.as_deref().map(stat_fields).unwrap_or_default();
        // Fields after the command name: state is the 3rd field of the
        // line, so field N of proc(5) is at index N - 3.
        let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
        let cpu_seconds = match (field(14), field(15)) {
            (Some(user), Some(system)) => Some((user + system) as f64 / TICKS_PER_SECOND),
            _ => None,
        };
        let boot = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|s| value_of(&s, "btime"));
        let start_time_seconds = match (boot, field(22)) {
            (Some(boot), Some(ticks)) => Some(boot as f64 + ticks as f64 / TICKS_PER_SECOND),
            _ => None,
        };
        let kb = |key| {
            status
                .as_deref()
                .and_then(|s| value_of(s, key))
                .map(|k| k * 1024)
        };
        ProcessStats {
            cpu_seconds,
            resident_bytes: kb("VmRSS:"),
            virtual_bytes: kb("VmSize:"),
            open_fds: std::fs::read_dir("/proc/self/fd")
                .ok()
                .map(|d| d.count() as u64),
            max_fds: std::fs::read_to_string("/proc/self/limits")
                .ok()
                .and_then(|s| max_open_files(&s)),
            start_time_seconds,
        }
    }

    /// Resident memory only (the dashboard's once-a-second sample).
    pub fn resident_bytes() -> Option<u64> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        value_of(&status, "VmRSS:").map(|k| k * 1024)
    }
}

/// The fields of /proc/self/stat after the command name, which is in
/// parentheses and may itself hold spaces and parentheses.
fn stat_fields(stat: &str) -> Vec<&str> {
    match stat.rfind(')') {
        Some(end) => stat
            .get(end + 1..)
            .unwrap_or_default()
            .split_whitespace()
            .collect(),
        None => Vec::new(),
    }
}

/// The number after `key` on its line (`VmRSS:   2076 kB`, `btime 17…`).
fn value_of(text: &str, key: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(key))?;
    line.get(key.len()..)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn max_open_files(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.get("Max open files".len()..)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_files_parse() {
        let stat = "42 (a (b) c) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1 0 1000 4096 3";
        let fields = stat_fields(stat);
        assert_eq!(fields[0], "S");
        assert_eq!(fields[14 - 3], "250");
        assert_eq!(
            value_of("Name:\tx\nVmRSS:\t    2076 kB\n", "VmRSS:"),
            Some(2076)
        );
        assert_eq!(
            max_open_files("Limit  Soft  Hard\nMax open files            1024                4096                files\n"),
            Some(1024)
        );
        let me = ProcessStats::read();
        if cfg!(target_os = "linux") {
            assert!(me.resident_bytes.unwrap() > 0);
            assert!(me.cpu_seconds.is_some());
            assert!(me.open_fds.unwrap() > 0);
            assert!(me.start_time_seconds.unwrap() > 1.0e9);
        }
    }
}
