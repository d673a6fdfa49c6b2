//! CPU and memory of a local job from `/proc`: every process in the job's process group
//! (the runtime starts each job as a group leader), so a `sh -c` job counts its children.

use std::fs;
use std::time::Instant;

/// Clock ticks per second of `/proc/<pid>/stat` times. Linux fixes USER_HZ at 100 on every
/// architecture it exports to user space; reading `sysconf` would need `unsafe`.
const TICKS_PER_SEC: f64 = 100.0;

/// Summed figures of one process group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct GroupUsage {
    /// User + system ticks of live members, plus those of reaped children.
    pub(crate) cpu_ticks: u64,
    /// Resident memory, bytes.
    pub(crate) rss_bytes: u64,
}

/// The usage of process group `pgid` now.
pub(crate) fn group_usage(pgid: u32) -> GroupUsage {
    let Ok(entries) = fs::read_dir("/proc") else {
        return GroupUsage::default();
    };
    let mut usage = GroupUsage::default();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        // Processes come and go while we read; a vanished one simply is not counted.
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        match parse_stat(&stat) {
            Some(s) if s.pgrp == pgid => {
                usage.cpu_ticks += s.ticks;
                usage.rss_bytes += rss_bytes(pid).unwrap_or(0);
            }
            _ => {}
        }
    }
    usage
}

/// The fields of `/proc/<pid>/stat` we use.
#[derive(Debug, PartialEq, Eq)]
struct Stat {
    pgrp: u32,
    ticks: u64,
}

/// Parses `/proc/<pid>/stat`; the command name may hold spaces and parentheses, so fields
/// are counted from the last `)`.
fn parse_stat(text: &str) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ")": state(3) ppid(4) pgrp(5) … utime(14) stime(15) cutime(16) cstime(17).
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
    let ticks = field(14)? + field(15)? + field(16)? + field(17)?;
    Some(Stat {
        pgrp: u32::try_from(field(5)?).ok()?,
        ticks,
    })
}

/// `VmRSS` of `/proc/<pid>/status`, in bytes (kernel threads have none).
fn rss_bytes(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// CPU % of one core between two samples (the first sample is against the process start).
#[derive(Debug, Clone, Copy)]
pub(crate) struct CpuSample {
    pub(crate) at: Instant,
    pub(crate) ticks: u64,
}

impl CpuSample {
    /// CPU % of one core from `self` to `later`.
    pub(crate) fn pct_until(self, later: CpuSample) -> f64 {
        let secs = later.at.saturating_duration_since(self.at).as_secs_f64();
        if secs <= 0.0 {
            return 0.0;
        }
        later.ticks.saturating_sub(self.ticks) as f64 / TICKS_PER_SEC / secs * 100.0
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn stat_lines_with_odd_names_parse() {
        let line = "42 (my (odd) name) S 1 42 42 0 -1 4194560 100 0 0 0 7 3 1 1 20 0 1 0 5 0 0";
        assert_eq!(
            parse_stat(line),
            Some(Stat {
                pgrp: 42,
                ticks: 12
            })
        );
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn cpu_percent_is_of_one_core() {
        let start = Instant::now();
        let a = CpuSample {
            at: start,
            ticks: 0,
        };
        let b = CpuSample {
            at: start + Duration::from_secs(2),
            ticks: 300,
        };
        assert!((a.pct_until(b) - 150.0).abs() < 1e-9);
    }

    #[test]
    fn this_process_group_is_visible() {
        let me = std::process::id();
        let stat = fs::read_to_string(format!("/proc/{me}/stat")).unwrap();
        let pgrp = parse_stat(&stat).unwrap().pgrp;
        assert!(group_usage(pgrp).rss_bytes > 0);
    }
}
