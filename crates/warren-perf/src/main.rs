//! The `warren-perf` command: see `warren-perf --help` and the crate docs.

use std::process::ExitCode;

use clap::Parser;
use serde_json::Value;
use warren_perf::Config;

fn main() -> ExitCode {
    let cfg = Config::parse();
    if let Err(e) = cfg.validate() {
        eprintln!("warren-perf: {e}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cfg.threads)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("warren-perf: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let json = cfg.json;
    let report = match runtime.block_on(warren_perf::run(cfg)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("warren-perf: error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    if json {
        println!("{report}");
    } else {
        print_human(&report);
    }
    let failed = report["errors"].as_array().is_some_and(|e| !e.is_empty());
    if failed {
        for e in report["errors"].as_array().into_iter().flatten() {
            eprintln!("warren-perf: error: {}", e.as_str().unwrap_or_default());
        }
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn num(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    }
}

fn print_human(r: &Value) {
    if r["cleanup_only"].as_bool() == Some(true) {
        println!("cleanup-only: {} queues deleted", num(&r["queues_deleted"]));
        return;
    }
    println!(
        "== {} ({}) {}",
        num(&r["name"]).trim_matches('"'),
        num(&r["mode"]).trim_matches('"'),
        num(&r["uri"]).trim_matches('"')
    );
    if r["mode"] == "backlog" {
        println!(
            "backlog {}: publish {} msg/s ({} s), drain {} msg/s ({} s), depth after publish {}",
            num(&r["backlog"]),
            num(&r["pub_rate"]),
            num(&r["pub_s"]),
            num(&r["cons_rate"]),
            num(&r["drain_s"]),
            num(&r["depth_after_publish"])
        );
    } else {
        println!(
            "publish {} msg/s, confirm {} msg/s, consume {} msg/s, broker accepted {} msg/s (window {} s)",
            num(&r["pub_rate"]),
            num(&r["confirm_rate"]),
            num(&r["cons_rate"]),
            num(&r["acc_rate"]),
            num(&r["elapsed_s"])
        );
    }
    let l = &r["latency"];
    if !l.is_null() {
        println!(
            "latency us: p50 {} p75 {} p95 {} p99 {} p99.9 {} max {}",
            num(&l["p50_us"]),
            num(&l["p75_us"]),
            num(&l["p95_us"]),
            num(&l["p99_us"]),
            num(&l["p999_us"]),
            num(&l["max_us"])
        );
    }
    let b = &r["broker"];
    if !b.is_null() {
        println!(
            "broker: {} % CPU, {} us CPU/msg, RSS {} MB (peak {} MB)",
            num(&b["cpu_pct"]),
            num(&b["us_per_msg"]),
            num(&b["rss_end_mb"]),
            num(&b["rss_peak_mb"])
        );
    }
    let c = &r["client"];
    if !c.is_null() {
        println!(
            "client: {} % CPU, {} us CPU/msg",
            num(&c["cpu_pct"]),
            num(&c["us_per_msg"])
        );
    }
    let s = &r["system"];
    if !s.is_null() {
        println!(
            "machine: {} % CPU busy, other processes {} %",
            num(&s["cpu_pct"]),
            num(&s["other_cpu_pct"])
        );
    }
    let mut kv = Vec::new();
    for k in [
        "name",
        "pub_rate",
        "confirm_rate",
        "cons_rate",
        "acc_rate",
        "published",
        "confirmed",
        "consumed",
        "pub_s",
        "drain_s",
    ] {
        if let Some(v) = r.get(k).filter(|v| !v.is_null()) {
            kv.push(format!("{k}={}", num(v).trim_matches('"')));
        }
    }
    for (k, v) in [
        ("lat_p50_us", &r["latency"]["p50_us"]),
        ("lat_p99_us", &r["latency"]["p99_us"]),
        ("broker_cpu_pct", &r["broker"]["cpu_pct"]),
        ("broker_us_per_msg", &r["broker"]["us_per_msg"]),
        ("broker_rss_peak_mb", &r["broker"]["rss_peak_mb"]),
        ("client_cpu_pct", &r["client"]["cpu_pct"]),
        ("client_us_per_msg", &r["client"]["us_per_msg"]),
        ("other_cpu_pct", &r["system"]["other_cpu_pct"]),
    ] {
        if !v.is_null() {
            kv.push(format!("{k}={}", num(v)));
        }
    }
    kv.push(format!(
        "errors={}",
        r["errors"].as_array().map_or(0, |e| e.len())
    ));
    println!("RESULT {}", kv.join(" "));
}
