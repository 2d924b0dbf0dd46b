//! The process's table of open descriptors, grown once at start.
//!
//! Linux grows a process's descriptor table by doubling as descriptors are
//! opened, and in a process with more than one thread each growth first
//! waits for an RCU grace period (`expand_fdtable`), while every thread that
//! opens or accepts a descriptor waits behind it. Here that was 10–25 ms
//! each time the 256th, 512th, 1024th… connection was accepted, with both
//! connection threads stopped: a wave of connects paid it five times on its
//! way to 5,000. Growing the table once, at start, pays that wait once; it
//! costs the kernel about 8 bytes per descriptor slot.

use std::os::fd::AsFd;

use rustix::process::{getrlimit, Resource};

/// The table is grown to hold the soft limit on open files, at most this
/// many descriptors.
const RESERVE_MAX: u64 = 65_536;

/// Grows the descriptor table to the soft `RLIMIT_NOFILE` (at most
/// [`RESERVE_MAX`]) by duplicating a descriptor at the highest number
/// allowed and closing it again: the table keeps its size. Best effort: a
/// failure only leaves the table to grow as it goes.
pub(crate) fn reserve_table() {
    let limit = wanted();
    let Some(highest) = limit.checked_sub(1).and_then(|n| i32::try_from(n).ok()) else {
        return;
    };
    let grown = std::fs::File::open("/dev/null").and_then(|null| {
        // The duplicate closes again at once.
        rustix::io::fcntl_dupfd_cloexec(null.as_fd(), highest)
            .map(drop)
            .map_err(std::io::Error::from)
    });
    if let Err(e) = grown {
        tracing::debug!("could not make room for {limit} descriptors at start: {e}");
    }
}

/// The slots to make room for: the soft limit, at most [`RESERVE_MAX`].
fn wanted() -> u64 {
    getrlimit(Resource::Nofile)
        .current
        .unwrap_or(RESERVE_MAX)
        .min(RESERVE_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernel's own figure for the table's size (`FDSize` in
    /// /proc/self/status).
    fn table_size() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("FDSize:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap()
    }

    /// After `reserve_table` the table holds the soft limit (capped), so
    /// accepting connections never grows it.
    #[test]
    fn the_table_holds_the_soft_limit_after_start() {
        reserve_table();
        let limit = wanted();
        assert!(table_size() >= limit, "FDSize {} < {limit}", table_size());
    }
}
