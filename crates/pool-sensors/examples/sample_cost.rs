//! Prints the cost of one memory sample and one CPU sample on this machine, averaged over many samples.
//!
//! `cargo run --release -p pool-sensors --example sample_cost [N]`

use std::time::Instant as WallInstant;

use pool_core::Instant;
use pool_sensors::{CpuMode, CpuSensor, MemorySensor, SensorRoot, Warnings};

fn main() {
    let n: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1000);
    let pid = std::process::id();
    let mut w = Warnings::new();

    // As the pool samples: once a second of its clock, so the layout is looked up again every tenth sample.
    let second = |i: u32| Instant::from_secs(u64::from(i));
    let mut memory = MemorySensor::new(SensorRoot::default(), pid);
    let start = WallInstant::now();
    let mut last = None;
    for i in 0..n {
        last = memory.read_at(second(i), &mut w);
    }
    let per = start.elapsed().as_secs_f64() * 1e6 / f64::from(n);
    println!("memory (read_at, 1 s apart): {per:.1} µs per sample over {n} samples; last {last:?}");
    let start = WallInstant::now();
    for _ in 0..n {
        core::hint::black_box(memory.read(&mut w));
    }
    let per = start.elapsed().as_secs_f64() * 1e6 / f64::from(n);
    println!("memory (read, everything looked up): {per:.1} µs per sample");

    for mode in [CpuMode::Auto, CpuMode::Host, CpuMode::Process] {
        let mut cpu = CpuSensor::new(SensorRoot::default(), pid, mode);
        let start = WallInstant::now();
        let mut last = None;
        for i in 1..=n {
            last = cpu.read(second(i), &mut w).or(last);
        }
        let per = start.elapsed().as_secs_f64() * 1e6 / f64::from(n);
        println!(
            "cpu ({mode:?}): {per:.1} µs per sample over {n} samples; last {last:?} from {:?}",
            cpu.source()
        );
    }
    for warning in w.all() {
        println!("warning: {warning}");
    }
}
