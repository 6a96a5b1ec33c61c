//! Resource alarms: the memory high watermark and the disk free limit, as in RabbitMQ.
//!
//! This module owns the alarm state ([`Alarms`]) and the monitor thread that samples it.
//! Every `check_interval` (1 s by default) the monitor reads:
//!
//! - **memory**: the process's resident set size, `/proc/self/statm` (resident pages x
//!   page size), which is what RabbitMQ's default `vm_memory_calculation_strategy = rss`
//!   counts on Linux. The alarm is raised while it is above the high watermark: a
//!   fraction of the total memory (RabbitMQ's default 0.4) or an absolute number of bytes.
//!   Total memory is the cgroup's limit when one is set (v2 `memory.max`, else v1
//!   `memory.limit_in_bytes`), capped by `/proc/meminfo`'s `MemTotal`; it is read once, at
//!   start.
//! - **disk**: the space available to unprivileged users on the data directory's file
//!   system (`statvfs`: `f_bavail x f_frsize`, the "Available" column of `df`, which
//!   RabbitMQ reads). The alarm is raised while it is below `disk_free_limit` (RabbitMQ's
//!   default 50 MB), absolute or relative to total memory.
//!
//! Data flow: the monitor (or a setter, which re-checks at once, like `rabbitmqctl
//! set_disk_free_limit`) computes the new [`AlarmSet`], logs raises (warn) and clears
//! (info) with the figures as fields, stores "any alarm raised" in an atomic flag and
//! publishes the set on a `tokio::sync::watch`. The publish path of a connection reads the
//! flag with one relaxed load per content frame; a connection that is blocked waits on the
//! watch to learn when every alarm has cleared (`warren-server/src/flow.rs`).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::watch;

/// RabbitMQ's default `vm_memory_high_watermark.relative`.
pub const DEFAULT_MEMORY_HIGH_WATERMARK: f64 = 0.4;
/// RabbitMQ's default `disk_free_limit.absolute` (50 MB, decimal, as RabbitMQ's
/// `50000000`).
pub const DEFAULT_DISK_FREE_LIMIT: u64 = 50_000_000;

/// Where the memory alarm goes off.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MemoryWatermark {
    /// A fraction of the total memory (machine or cgroup), 0.0 to 1.0. 0 blocks every
    /// publisher, as in RabbitMQ.
    Relative(f64),
    /// Bytes of resident memory.
    Absolute(u64),
}

/// Below how much free disk the disk alarm goes off.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DiskFreeLimit {
    /// Bytes.
    Absolute(u64),
    /// A multiple of the total memory (RabbitMQ's `disk_free_limit.relative`, e.g. 1.5).
    MemRelative(f64),
}

/// Alarm thresholds and how often they are checked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AlarmConfig {
    /// The memory high watermark.
    pub memory_high_watermark: MemoryWatermark,
    /// The disk free limit of the data directory.
    pub disk_free_limit: DiskFreeLimit,
    /// How often the monitor samples memory and disk.
    pub check_interval: Duration,
}

impl Default for AlarmConfig {
    fn default() -> Self {
        Self {
            memory_high_watermark: MemoryWatermark::Relative(DEFAULT_MEMORY_HIGH_WATERMARK),
            disk_free_limit: DiskFreeLimit::Absolute(DEFAULT_DISK_FREE_LIMIT),
            check_interval: Duration::from_secs(1),
        }
    }
}

/// Which resource alarms are raised.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AlarmSet {
    /// The memory alarm (resident memory above the high watermark).
    pub memory: bool,
    /// The disk alarm (free disk below the limit).
    pub disk: bool,
}

impl AlarmSet {
    /// True if any alarm is raised.
    pub fn any(self) -> bool {
        self.memory || self.disk
    }

    /// The reason RabbitMQ gives in connection.blocked: "low on memory", "low on disk",
    /// "low on memory & disk".
    pub fn blocked_reason(self) -> &'static str {
        match (self.memory, self.disk) {
            (true, true) => "low on memory & disk",
            (true, false) => "low on memory",
            (false, true) => "low on disk",
            (false, false) => "",
        }
    }
}

/// The last readings and thresholds, for operators (and, later, the management API).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AlarmStatus {
    /// Raised alarms.
    pub alarms: AlarmSet,
    /// Resident memory at the last check, bytes (None: unreadable).
    pub memory_used: Option<u64>,
    /// The high watermark in bytes.
    pub memory_limit: u64,
    /// Total memory the relative thresholds are fractions of, bytes.
    pub total_memory: u64,
    /// Free disk space of the data directory at the last check, bytes (None: unreadable).
    pub disk_free: Option<u64>,
    /// The disk free limit in bytes.
    pub disk_free_limit: u64,
}

/// The broker's resource alarms; see the module docs.
#[derive(Debug)]
pub struct Alarms {
    any: AtomicBool,
    sender: watch::Sender<AlarmSet>,
    data_dir: PathBuf,
    total_memory: u64,
    /// Thresholds and last readings; also serialises checks, so raises and clears are
    /// logged once and in order.
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    watermark: MemoryWatermark,
    disk_limit: DiskFreeLimit,
    status: AlarmStatus,
    /// An unreadable figure is logged once, not every second.
    memory_unreadable_logged: bool,
    disk_unreadable_logged: bool,
}

impl Alarms {
    /// Alarms for a broker whose data directory is `data_dir`. Reads the total memory and
    /// takes a first sample, so an alarm that applies from the start is raised before the
    /// first connection.
    pub fn new(data_dir: &Path, config: &AlarmConfig) -> Arc<Alarms> {
        let (total_memory, source) = total_memory();
        let (sender, _) = watch::channel(AlarmSet::default());
        let alarms = Arc::new(Alarms {
            any: AtomicBool::new(false),
            sender,
            data_dir: data_dir.to_path_buf(),
            total_memory,
            state: Mutex::new(State {
                watermark: config.memory_high_watermark,
                disk_limit: config.disk_free_limit,
                status: AlarmStatus {
                    total_memory,
                    ..AlarmStatus::default()
                },
                memory_unreadable_logged: false,
                disk_unreadable_logged: false,
            }),
        });
        let status = alarms.check();
        tracing::info!(
            total_memory_bytes = total_memory,
            total_memory_source = source,
            memory_high_watermark_bytes = status.memory_limit,
            disk_free_limit_bytes = status.disk_free_limit,
            data_dir = %data_dir.display(),
            "resource alarm thresholds"
        );
        alarms
    }

    /// True if any alarm is raised: one relaxed load, for the publish path.
    #[inline]
    pub fn any_raised(&self) -> bool {
        self.any.load(Ordering::Relaxed)
    }

    /// The raised alarms.
    pub fn current(&self) -> AlarmSet {
        *self.sender.borrow()
    }

    /// A receiver that sees every change of the raised alarms.
    pub fn subscribe(&self) -> watch::Receiver<AlarmSet> {
        self.sender.subscribe()
    }

    /// The last readings and the thresholds in bytes.
    pub fn status(&self) -> AlarmStatus {
        self.state.lock().status
    }

    /// Change the memory high watermark and check at once (RabbitMQ's `rabbitmqctl
    /// set_vm_memory_high_watermark`).
    pub fn set_memory_high_watermark(&self, watermark: MemoryWatermark) -> AlarmStatus {
        self.state.lock().watermark = watermark;
        tracing::info!(?watermark, "memory high watermark changed");
        self.check()
    }

    /// Change the disk free limit and check at once (RabbitMQ's `rabbitmqctl
    /// set_disk_free_limit`).
    pub fn set_disk_free_limit(&self, limit: DiskFreeLimit) -> AlarmStatus {
        self.state.lock().disk_limit = limit;
        tracing::info!(?limit, "disk free limit changed");
        self.check()
    }

    /// Sample memory and disk, raise or clear alarms, and return the new status.
    pub fn check(&self) -> AlarmStatus {
        let memory_used = read_rss();
        let disk_free = available_disk(&self.data_dir);
        let mut state = self.state.lock();
        let memory_limit = match state.watermark {
            MemoryWatermark::Relative(fraction) => scale(self.total_memory, fraction),
            MemoryWatermark::Absolute(bytes) => bytes,
        };
        let disk_free_limit = match state.disk_limit {
            DiskFreeLimit::Absolute(bytes) => bytes,
            DiskFreeLimit::MemRelative(factor) => scale(self.total_memory, factor),
        };
        let before = state.status.alarms;
        // An unreadable figure keeps the alarm as it was.
        let memory = match memory_used {
            Ok(used) => used > memory_limit,
            Err(ref error) => {
                if !state.memory_unreadable_logged {
                    tracing::warn!(%error, "cannot read the process's memory use; the memory alarm keeps its state");
                    state.memory_unreadable_logged = true;
                }
                before.memory
            }
        };
        let disk = match disk_free {
            Ok(free) => free < disk_free_limit,
            Err(ref error) => {
                if !state.disk_unreadable_logged {
                    tracing::warn!(%error, data_dir = %self.data_dir.display(), "cannot read the free disk space; the disk alarm keeps its state");
                    state.disk_unreadable_logged = true;
                }
                before.disk
            }
        };
        let used = memory_used.as_ref().ok().copied();
        let free = disk_free.as_ref().ok().copied();
        match (before.memory, memory) {
            (false, true) => tracing::warn!(
                used_bytes = used,
                limit_bytes = memory_limit,
                "memory resource limit alarm set on node; publishers will be blocked until this alarm clears"
            ),
            (true, false) => tracing::info!(
                used_bytes = used,
                limit_bytes = memory_limit,
                "memory resource limit alarm cleared on node"
            ),
            _ => {}
        }
        match (before.disk, disk) {
            (false, true) => tracing::warn!(
                free_bytes = free,
                limit_bytes = disk_free_limit,
                data_dir = %self.data_dir.display(),
                "free disk space is insufficient: disk resource limit alarm set on node; publishers will be blocked until this alarm clears"
            ),
            (true, false) => tracing::info!(
                free_bytes = free,
                limit_bytes = disk_free_limit,
                data_dir = %self.data_dir.display(),
                "free disk space is sufficient: disk resource limit alarm cleared on node"
            ),
            _ => {}
        }
        let alarms = AlarmSet { memory, disk };
        state.status = AlarmStatus {
            alarms,
            memory_used: used,
            memory_limit,
            total_memory: self.total_memory,
            disk_free: free,
            disk_free_limit,
        };
        if alarms != before {
            // Flag first: a connection woken by the watch must see the same answer.
            self.any.store(alarms.any(), Ordering::Relaxed);
            self.sender.send_replace(alarms);
        }
        state.status
    }

    /// Start the monitor thread: a check every `interval` until the returned handle is
    /// dropped.
    pub fn start_monitor(self: &Arc<Self>, interval: Duration) -> AlarmMonitor {
        let (stop, stopped) = mpsc::channel::<()>();
        let alarms = Arc::clone(self);
        let thread = std::thread::Builder::new()
            .name("warren-alarms".into())
            .spawn(move || {
                // A dropped sender (the handle) ends the wait at once.
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
                    alarms.check();
                }
            });
        let thread = match thread {
            Ok(thread) => Some(thread),
            Err(error) => {
                tracing::error!(%error, "cannot start the resource alarm monitor; alarms are checked only when their thresholds change");
                None
            }
        };
        AlarmMonitor {
            stop: Some(stop),
            thread,
        }
    }
}

/// The running monitor thread; dropping it stops the thread.
#[derive(Debug)]
pub struct AlarmMonitor {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for AlarmMonitor {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn scale(total: u64, factor: f64) -> u64 {
    // Saturating float-to-int conversion: a huge factor means "no limit".
    (total as f64 * factor) as u64
}

/// Why a figure could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadingError {
    /// The file or syscall failed.
    #[error("{what}: {source}")]
    Io {
        /// What was read.
        what: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file did not have the expected format.
    #[error("unexpected format of {0}")]
    Format(&'static str),
}

/// Resident set size of this process, bytes.
pub fn read_rss() -> Result<u64, ReadingError> {
    let statm = fs::read_to_string("/proc/self/statm").map_err(|source| ReadingError::Io {
        what: "/proc/self/statm",
        source,
    })?;
    let pages = parse_statm_resident(&statm).ok_or(ReadingError::Format("/proc/self/statm"))?;
    Ok(pages.saturating_mul(rustix::param::page_size() as u64))
}

/// Bytes available to unprivileged users on the file system holding `path`.
pub fn available_disk(path: &Path) -> Result<u64, ReadingError> {
    let stat = rustix::fs::statvfs(path).map_err(|e| ReadingError::Io {
        what: "statvfs of the data directory",
        source: e.into(),
    })?;
    Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
}

/// Total memory and where it came from: the cgroup limit when lower than the machine's.
fn total_memory() -> (u64, &'static str) {
    let machine = fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| parse_meminfo_total(&m));
    let cgroup = cgroup_memory_limit();
    match (machine, cgroup) {
        (Some(m), Some((c, source))) if c < m => (c, source),
        (Some(m), _) => (m, "/proc/meminfo"),
        (None, Some((c, source))) => (c, source),
        (None, None) => {
            // Not Linux, or /proc is missing: RabbitMQ falls back to 1 GiB as well.
            tracing::warn!("cannot read the total memory; assuming 1 GiB");
            (1 << 30, "assumed")
        }
    }
}

/// The memory limit of this process's cgroup, if any (the lowest along its path).
fn cgroup_memory_limit() -> Option<(u64, &'static str)> {
    let membership = fs::read_to_string("/proc/self/cgroup").ok()?;
    // cgroup v2: "0::/path"; v1: "N:memory:/path" (possibly with other controllers).
    let mut v2_path = None;
    let mut v1_path = None;
    for line in membership.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if id == "0" && controllers.is_empty() {
            v2_path = Some(path.to_owned());
        } else if controllers.split(',').any(|c| c == "memory") {
            v1_path = Some(path.to_owned());
        }
    }
    let lowest = |root: &str, path: &str, file: &str| -> Option<u64> {
        // The cgroup's own limit and its ancestors' (a parent's limit applies too); in a
        // cgroup namespace the mount's root is the process's own cgroup.
        let mut limits = Vec::new();
        let mut dir = PathBuf::from(root);
        limits.push(dir.join(file));
        for part in path.split('/').filter(|p| !p.is_empty()) {
            dir.push(part);
            limits.push(dir.join(file));
        }
        limits
            .iter()
            .filter_map(|f| fs::read_to_string(f).ok())
            .filter_map(|text| parse_cgroup_limit(&text))
            .min()
    };
    if let Some(path) = v2_path
        && let Some(limit) = lowest("/sys/fs/cgroup", &path, "memory.max")
    {
        return Some((limit, "cgroup v2 memory.max"));
    }
    if let Some(path) = v1_path
        && let Some(limit) = lowest("/sys/fs/cgroup/memory", &path, "memory.limit_in_bytes")
    {
        return Some((limit, "cgroup v1 memory.limit_in_bytes"));
    }
    None
}

/// Resident pages, the second field of `/proc/self/statm`.
pub fn parse_statm_resident(statm: &str) -> Option<u64> {
    statm.split_whitespace().nth(1)?.parse().ok()
}

/// `MemTotal` of `/proc/meminfo`, bytes.
pub fn parse_meminfo_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let mut fields = line["MemTotal:".len()..].split_whitespace();
    let value: u64 = fields.next()?.parse().ok()?;
    match fields.next() {
        Some("kB") => value.checked_mul(1024),
        None => Some(value),
        Some(_) => None,
    }
}

/// A cgroup memory limit file: v2 `max` and v1's "no limit" (a page-rounded `i64::MAX`)
/// mean unlimited.
pub fn parse_cgroup_limit(text: &str) -> Option<u64> {
    let text = text.trim();
    if text == "max" {
        return None;
    }
    let limit: u64 = text.parse().ok()?;
    (limit < (1 << 62)).then_some(limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statm_resident_is_the_second_field() {
        assert_eq!(
            parse_statm_resident("5000 1234 300 10 0 900 0\n"),
            Some(1234)
        );
        assert_eq!(parse_statm_resident("5000"), None);
    }

    #[test]
    fn meminfo_total_is_read_in_bytes() {
        let meminfo = "MemTotal:       24683664 kB\nMemFree:        1000 kB\n";
        assert_eq!(parse_meminfo_total(meminfo), Some(24_683_664 * 1024));
        assert_eq!(parse_meminfo_total("MemFree: 1 kB\n"), None);
    }

    #[test]
    fn cgroup_max_and_v1_sentinel_mean_unlimited() {
        assert_eq!(parse_cgroup_limit("max\n"), None);
        assert_eq!(parse_cgroup_limit("9223372036854771712\n"), None);
        assert_eq!(parse_cgroup_limit("536870912\n"), Some(536_870_912));
    }

    #[test]
    fn blocked_reason_names_every_raised_resource() {
        let set = |memory, disk| AlarmSet { memory, disk };
        assert_eq!(set(true, false).blocked_reason(), "low on memory");
        assert_eq!(set(false, true).blocked_reason(), "low on disk");
        assert_eq!(set(true, true).blocked_reason(), "low on memory & disk");
        assert!(!set(false, false).any());
    }

    #[test]
    fn this_process_has_a_resident_size_and_its_temp_dir_free_space() {
        assert!(read_rss().expect("rss") > 0);
        let dir = tempfile::tempdir().expect("temp dir");
        assert!(available_disk(dir.path()).expect("statvfs") > 0);
    }

    #[test]
    fn memory_alarm_follows_the_absolute_watermark() {
        let dir = tempfile::tempdir().expect("temp dir");
        let alarms = Alarms::new(dir.path(), &AlarmConfig::default());
        let mut changes = alarms.subscribe();
        assert!(!alarms.any_raised());
        let status = alarms.set_memory_high_watermark(MemoryWatermark::Absolute(1));
        assert!(status.alarms.memory && !status.alarms.disk);
        assert!(alarms.any_raised());
        assert!(changes.has_changed().expect("sender alive"));
        assert_eq!(*changes.borrow_and_update(), status.alarms);
        let status = alarms.set_memory_high_watermark(MemoryWatermark::Absolute(u64::MAX));
        assert_eq!(status.alarms, AlarmSet::default());
        assert!(!alarms.any_raised());
        assert!(changes.has_changed().expect("sender alive"));
    }

    #[test]
    fn relative_watermark_zero_raises_the_memory_alarm() {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = AlarmConfig {
            memory_high_watermark: MemoryWatermark::Relative(0.0),
            ..AlarmConfig::default()
        };
        let alarms = Alarms::new(dir.path(), &config);
        assert!(alarms.current().memory);
        assert_eq!(alarms.status().memory_limit, 0);
    }

    #[test]
    fn disk_alarm_follows_the_free_limit() {
        let dir = tempfile::tempdir().expect("temp dir");
        let alarms = Alarms::new(dir.path(), &AlarmConfig::default());
        let status = alarms.set_disk_free_limit(DiskFreeLimit::Absolute(u64::MAX));
        assert!(status.alarms.disk && !status.alarms.memory);
        assert_eq!(alarms.current().blocked_reason(), "low on disk");
        let status = alarms.set_disk_free_limit(DiskFreeLimit::MemRelative(0.0));
        assert!(!status.alarms.disk);
        assert_eq!(status.disk_free_limit, 0);
    }

    #[test]
    fn monitor_raises_an_alarm_without_a_setter() {
        let dir = tempfile::tempdir().expect("temp dir");
        let alarms = Alarms::new(dir.path(), &AlarmConfig::default());
        alarms.state.lock().disk_limit = DiskFreeLimit::Absolute(u64::MAX);
        let _monitor = alarms.start_monitor(Duration::from_millis(20));
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !alarms.current().disk {
            assert!(
                std::time::Instant::now() < deadline,
                "monitor never raised the disk alarm"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
