//! Plausibility on this machine's real `/proc` and `/sys`: whatever the host, the readings must make sense and
//! come without a warning.

use std::time::{Duration, Instant as WallInstant};

use pool_core::Instant;
use pool_sensors::{CpuMode, CpuSensor, MemorySensor, SensorRoot, Warnings};

#[cfg(target_os = "linux")]
#[test]
fn this_machine_reports_plausible_memory() {
    let mut w = Warnings::new();
    let m = MemorySensor::new(SensorRoot::default(), std::process::id())
        .read(&mut w)
        .expect("this process's memory is readable");
    let total = m.total_bytes.expect("a total");
    assert!(total > 0);
    assert!(m.used_bytes > 0, "{m:?}");
    assert!(m.used_bytes < total, "{m:?}");
    if let Some(u) = m.system_used_bytes {
        assert!(u <= total, "{m:?}");
    }
    assert!(w.all().is_empty(), "{:#?}", w.all());
}

#[cfg(target_os = "linux")]
#[test]
fn this_machine_reports_a_cpu_ratio_within_zero_and_one_after_two_samples() {
    for mode in [CpuMode::Auto, CpuMode::Host, CpuMode::Process] {
        let mut w = Warnings::new();
        let mut s = CpuSensor::new(SensorRoot::default(), std::process::id(), mode);
        let start = WallInstant::now();
        let now = || Instant::ZERO + start.elapsed();
        assert_eq!(s.read(now(), &mut w), None);
        // Burn CPU instead of sleeping until the clock has moved and the kernel counters have ticked.
        let mut ratio = None;
        let mut x = 0u64;
        // The kernel counters tick every few milliseconds; 15 s leaves room for a busy two-core machine.
        while ratio.is_none() && start.elapsed() < Duration::from_secs(15) {
            for i in 0..100_000u64 {
                x = x.wrapping_mul(31).wrapping_add(i);
            }
            std::hint::black_box(x);
            if start.elapsed() > Duration::from_millis(50) {
                ratio = s.read(now(), &mut w);
            }
        }
        let r = ratio.expect("a reading within 15 s");
        assert!((0.0..=1.0).contains(&r), "{mode:?}: {r}");
        assert!(w.all().is_empty(), "{:#?}", w.all());
    }
}
