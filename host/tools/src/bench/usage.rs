//! Server resource use read from `/proc`: CPU time and resident memory of the broker's processes
//! (every gunicorn worker counts, so pass them all).

use serde::Serialize;

/// Clock ticks per second of `/proc/<pid>/stat` times. `USER_HZ` is 100 on every Linux
/// architecture we run on, and reading `sysconf` would need `unsafe` or a process.
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU and memory of a set of processes at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Sample {
    /// User plus system CPU seconds, summed.
    pub cpu_s: f64,
    /// Resident set size, summed, in KiB.
    pub rss_kib: u64,
}

/// Samples `pids`; a pid that cannot be read is an error naming it.
pub fn sample(pids: &[u32]) -> Result<Sample, String> {
    let mut total = Sample::default();
    for pid in pids {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map_err(|e| format!("/proc/{pid}/stat: {e}"))?;
        total.cpu_s += cpu_seconds(&stat).ok_or_else(|| format!("/proc/{pid}/stat: unreadable"))?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .map_err(|e| format!("/proc/{pid}/status: {e}"))?;
        total.rss_kib += rss_kib(&status).unwrap_or(0);
    }
    Ok(total)
}

/// utime + stime of a `/proc/<pid>/stat` line, in seconds.
fn cpu_seconds(stat: &str) -> Option<f64> {
    // The command name may hold spaces and parentheses; the fields after it may not.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / TICKS_PER_SECOND)
}

/// `VmRSS` of a `/proc/<pid>/status`, in KiB.
fn rss_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_and_status_parse() {
        let stat = "1234 (gunicorn: worker (x)) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1 0";
        assert_eq!(cpu_seconds(stat), Some(3.0));
        assert_eq!(rss_kib("Name:\tx\nVmRSS:\t   2048 kB\n"), Some(2048));
        let me = sample(&[std::process::id()]).unwrap();
        assert!(me.rss_kib > 0);
        assert!(sample(&[u32::MAX]).is_err());
    }
}
