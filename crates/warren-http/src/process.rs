//! Readings of this broker process and its node for `/api/nodes` and the Prometheus
//! metrics: file descriptors, sockets, memory and disk (the
//! last two from the broker's alarm monitor, `warren_broker::alarms`), processors.
//! Read from `/proc` when asked; nothing here runs in the background.

use warren_broker::Broker;

/// RabbitMQ's reserve of descriptors for other uses, and its share of the rest for
/// sockets (`file_handle_cache`): sockets_total = trunc((fd_total - 103) * 0.9 - 2).
const FDS_RESERVED: u64 = 103;

/// What the node reports about itself.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeReadings {
    /// Open file descriptors.
    pub fd_used: u64,
    /// The soft limit on open files.
    pub fd_total: u64,
    /// Open AMQP client sockets.
    pub sockets_used: u64,
    /// Sockets the node would accept, by RabbitMQ's rule from `fd_total`.
    pub sockets_total: u64,
    /// Resident memory (bytes), as the memory alarm last read it (or now).
    pub mem_used: u64,
    /// The memory high watermark (bytes).
    pub mem_limit: u64,
    /// The memory alarm is raised.
    pub mem_alarm: bool,
    /// Free disk space of the data directory (bytes).
    pub disk_free: u64,
    /// The disk free limit (bytes).
    pub disk_free_limit: u64,
    /// The disk alarm is raised.
    pub disk_free_alarm: bool,
    /// Available processors.
    pub processors: u64,
    /// Threads of the process (RabbitMQ's `proc_used` counts Erlang processes; this is
    /// the nearest OS figure).
    pub threads: u64,
    /// Runnable tasks of the machine (the 4th field of `/proc/loadavg`, before the slash).
    pub run_queue: u64,
}

/// Read everything now.
pub fn read(broker: &Broker) -> NodeReadings {
    let status = broker.alarms().status();
    let fd_total = max_open_files().unwrap_or(0);
    NodeReadings {
        fd_used: warren_broker::stats::open_fds(),
        fd_total,
        sockets_used: broker.connections().list().len() as u64,
        sockets_total: sockets_limit(fd_total),
        mem_used: status
            .memory_used
            .or_else(|| warren_broker::alarms::read_rss().ok())
            .unwrap_or(0),
        mem_limit: status.memory_limit,
        mem_alarm: status.alarms.memory,
        disk_free: status.disk_free.unwrap_or(0),
        disk_free_limit: status.disk_free_limit,
        disk_free_alarm: status.alarms.disk,
        processors: std::thread::available_parallelism().map_or(1, |n| n.get() as u64),
        threads: warren_broker::stats::threads(),
        run_queue: run_queue().unwrap_or(0),
    }
}

/// RabbitMQ's socket limit for a descriptor limit.
pub fn sockets_limit(fd_total: u64) -> u64 {
    let usable = fd_total.saturating_sub(FDS_RESERVED) as f64;
    (usable * 0.9 - 2.0).max(0.0) as u64
}

fn max_open_files() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    parse_max_open_files(&limits)
}

/// The soft limit of the `Max open files` line of `/proc/self/limits`.
pub fn parse_max_open_files(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn run_queue() -> Option<u64> {
    let loadavg = std::fs::read_to_string("/proc/loadavg").ok()?;
    loadavg
        .split_whitespace()
        .nth(3)?
        .split('/')
        .next()?
        .parse()
        .ok()
}

/// How long the broker has been up, in ms.
pub fn uptime_ms(broker: &Broker) -> u64 {
    broker.uptime().as_millis() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_of_open_files_is_read() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \nMax open files            1024                 524288               files     \n";
        assert_eq!(parse_max_open_files(limits), Some(1024));
    }

    #[test]
    fn sockets_limit_follows_rabbitmqs_rule() {
        assert_eq!(sockets_limit(1_048_576), 943_623);
        assert_eq!(sockets_limit(50), 0);
    }
}
