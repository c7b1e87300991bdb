//! What the tool reads from the operating system: its own CPU time (`/proc/self/stat`) and memory,
//! a broker process's memory (`/proc/<pid>/status`), and the open-files limit it raises for runs
//! with many connections.

use std::time::Instant;

/// CPU time used by process `pid` (`None`: this process) so far, in seconds (user + system, all
/// threads).
pub fn process_cpu_seconds(pid: Option<u32>) -> Option<f64> {
    let stat = match pid {
        Some(pid) => std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?,
        None => std::fs::read_to_string("/proc/self/stat").ok()?,
    };
    // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 (utime) and 15 (stime) of proc(5), i.e. 11 and 12 after the state (field 3).
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let ticks = rustix::param::clock_ticks_per_second().max(1);
    Some((utime + stime) as f64 / ticks as f64)
}

/// Measures a process's CPU use between two calls, as a percentage of one core (200 % = two cores
/// busy).
#[derive(Debug)]
pub struct CpuMeter {
    pid: Option<u32>,
    last_cpu: f64,
    last_at: Instant,
}

impl CpuMeter {
    /// Starts measuring process `pid` (`None`: this process) now.
    pub fn new(pid: Option<u32>) -> Self {
        Self { pid, last_cpu: process_cpu_seconds(pid).unwrap_or(0.0), last_at: Instant::now() }
    }

    /// CPU use since the previous call (or since [`CpuMeter::new`]), in % of one core.
    pub fn sample(&mut self) -> f64 {
        let now = Instant::now();
        let cpu = process_cpu_seconds(self.pid).unwrap_or(self.last_cpu);
        let wall = now.duration_since(self.last_at).as_secs_f64();
        let pct = if wall > 0.0 { (cpu - self.last_cpu) / wall * 100.0 } else { 0.0 };
        self.last_cpu = cpu;
        self.last_at = now;
        pct.max(0.0)
    }
}

/// The cores this process may run on (CPU affinity and cgroup limits included).
pub fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Memory figures of a process, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Memory {
    /// Resident set size now (`VmRSS`).
    pub rss: u64,
    /// Peak resident set size (`VmHWM`).
    pub hwm: u64,
}

/// Reads `VmRSS` and `VmHWM` of process `pid` (`None`: this process).
pub fn memory(pid: Option<u32>) -> Option<Memory> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/status"),
        None => "/proc/self/status".to_owned(),
    };
    let status = std::fs::read_to_string(path).ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kb: u64 = line.get(name.len()..)?.split_whitespace().next()?.parse().ok()?;
        Some(kb * 1024)
    };
    Some(Memory { rss: field("VmRSS:")?, hwm: field("VmHWM:").unwrap_or(0) })
}

/// Resets the peak RSS (`VmHWM`) of process `pid` to its current RSS, so that the peak measured
/// is this run's (needs the right to write `/proc/<pid>/clear_refs`). Returns whether it worked.
pub fn reset_peak(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// Raises the soft open-files limit to the hard one (each connection is a file descriptor).
/// Returns the limit in force.
pub fn raise_open_files_limit() -> Option<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if let (Some(current), Some(maximum)) = (limit.current, limit.maximum)
        && current < maximum
    {
        let raised = rustix::process::Rlimit { current: Some(maximum), maximum: Some(maximum) };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            return Some(maximum);
        }
    }
    limit.current
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_cpu_and_memory() {
        assert!(process_cpu_seconds(None).is_some());
        assert!(process_cpu_seconds(Some(std::process::id())).is_some());
        let mem = memory(None).expect("own status");
        assert!(mem.rss > 0 && mem.hwm >= mem.rss);
        assert!(available_cores() >= 1);
    }
}
