//! CPU time and memory of a process (the broker, or ourselves) from `/proc`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Clock ticks per second of `/proc/<pid>/stat` times. Linux reports them in USER_HZ,
/// which is 100 on every mainstream architecture (reading it would need `sysconf`).
const CLK_TCK: f64 = 100.0;

/// One reading of a process.
#[derive(Debug, Clone, Copy)]
pub struct ProcSample {
    /// user + system CPU seconds so far.
    pub cpu_s: f64,
    /// resident set size in KiB.
    pub rss_kb: u64,
}

/// Read `/proc/<pid>/stat` (utime + stime) and `/proc/<pid>/status` (VmRSS).
pub fn sample(pid: u32) -> Option<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) end with ')'.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state); utime and stime are fields 14 and 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kb = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(ProcSample {
        cpu_s: (utime + stime) as f64 / CLK_TCK,
        rss_kb,
    })
}

/// Busy CPU seconds of the whole machine (all cores) from `/proc/stat`.
pub fn system_busy_s() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let f: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal
    let busy =
        f.first()? + f.get(1)? + f.get(2)? + f.get(5)? + f.get(6)? + f.get(7).copied().unwrap_or(0);
    Some(busy as f64 / CLK_TCK)
}

/// Samples a process's RSS every 100 ms on a thread and keeps the peak.
pub struct PeakRss {
    peak_kb: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl PeakRss {
    pub fn start(pid: Option<u32>) -> Self {
        let peak_kb = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let handle = pid.map(|pid| {
            let (peak, stop) = (peak_kb.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Relaxed) {
                    if let Some(s) = sample(pid) {
                        peak.fetch_max(s.rss_kb, Relaxed);
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            })
        });
        Self {
            peak_kb,
            stop,
            handle,
        }
    }

    pub fn peak_kb(&self) -> u64 {
        self.peak_kb.load(Relaxed)
    }

    pub fn finish(mut self) -> u64 {
        self.stop.store(true, Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        self.peak_kb()
    }
}
