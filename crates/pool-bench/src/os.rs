//! What the benchmark reads from the operating system: this process's CPU time.

use std::fs;

/// CPU seconds this process has used: the sum of every live thread's run time from
/// `/proc/self/task/*/schedstat` (nanoseconds), or `utime + stime` from `/proc/self/stat` (clock ticks,
/// assumed 100 Hz) where schedstat is missing.
pub(crate) fn cpu_seconds() -> f64 {
    schedstat().unwrap_or_else(stat_ticks)
}

fn schedstat() -> Option<f64> {
    let mut ns = 0u64;
    for entry in fs::read_dir("/proc/self/task").ok()? {
        let path = entry.ok()?.path().join("schedstat");
        // A thread that exited between the listing and the read has nothing more to add.
        let Ok(text) = fs::read_to_string(path) else {
            continue;
        };
        ns += text.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(ns as f64 / 1e9)
}

fn stat_ticks() -> f64 {
    let Ok(text) = fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = text.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    (tick(11) + tick(12)) / 100.0
}
