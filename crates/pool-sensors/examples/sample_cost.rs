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

    let mut memory = MemorySensor::new(SensorRoot::default(), pid);
    let start = WallInstant::now();
    let mut last = None;
    for _ in 0..n {
        last = memory.read(&mut w);
    }
    let per = start.elapsed().as_secs_f64() * 1e6 / f64::from(n);
    println!("memory: {per:.1} µs per sample over {n} samples; last {last:?}");

    for mode in [CpuMode::Auto, CpuMode::Host, CpuMode::Process] {
        let mut cpu = CpuSensor::new(SensorRoot::default(), pid, mode);
        let start = WallInstant::now();
        let mut last = None;
        for _ in 0..n {
            last = cpu.read(Instant::ZERO + start.elapsed(), &mut w).or(last);
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
