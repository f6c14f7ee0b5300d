//! `pool-bench`: the benchmark binary behind `cargo xtask bench`. One measurement per process, printed as one
//! line of `key=value` figures (the format of the peers' scripts in `../shared/peers/`).
//!
//! ```text
//! pool-bench noop    IMPL N CONCURRENCY          -> tasks_per_s
//! pool-bench sleep   IMPL N CONCURRENCY TASK_MS  -> efficiency (ideal wall time / measured)
//! pool-bench alloc   IMPL N CONCURRENCY          -> allocs_per_task (steady state, no-op tasks)
//! pool-bench latency IMPL N                      -> p50_us p99_us (task end to next start, concurrency 1)
//! pool-bench idle    IMPL SECONDS                -> cpu_share (CPU seconds per wall second)
//! pool-bench sensors ITERATIONS                  -> memory_us cpu_us (per sample)
//! pool-bench smoke                               -> every implementation once on a tiny input
//! ```
//!
//! IMPL is one of [`IMPLS`]. Our pools run their tasks in place ([`TaskMode::InPlace`]) except
//! `pool_tokio_mt_spawned`, which spawns each task ([`TaskMode::Spawned`], the builder's default).

mod impls;
mod os;
mod work;

use core::future::Future;
use core::time::Duration;
use std::process::ExitCode;
use std::time::Instant;

use pool_async_std::AsyncStdRuntime;
use pool_core::TaskMode;
use pool_sensors::{
    CpuMode, CpuSensor, MemorySensor, SensorRoot, SensorSettings, SystemSensors, Warnings,
};
use pool_smol::SmolRuntime;
use pool_tokio::TokioRuntime;

use crate::impls::Sleep;

/// Every implementation the binary runs.
const IMPLS: &[&str] = &[
    "pool_tokio_mt",
    "pool_tokio_mt_spawned",
    "pool_tokio_ct",
    "pool_smol",
    "pool_async_std",
    "tokio_joinset",
    "inplace",
    "smol_spawn",
    "bare_loop",
];

type Error = Box<dyn core::error::Error>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("pool-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn arg<T: core::str::FromStr>(args: &[String], i: usize, what: &str) -> Result<T, Error> {
    let text = args.get(i).ok_or_else(|| format!("missing {what}"))?;
    text.parse()
        .map_err(|_| format!("bad {what}: `{text}`").into())
}

fn run(args: &[String]) -> Result<String, Error> {
    let workload = args.first().map(String::as_str).unwrap_or("help");
    match workload {
        "noop" | "sleep" | "alloc" => {
            let imp: String = arg(args, 1, "IMPL")?;
            let n: u64 = arg(args, 2, "N")?;
            let c: usize = arg(args, 3, "CONCURRENCY")?;
            let task = if workload == "sleep" {
                Duration::from_secs_f64(arg::<f64>(args, 4, "TASK_MS")? / 1000.0)
            } else {
                Duration::ZERO
            };
            if workload == "alloc" {
                work::probe_allocations();
            }
            let wall = run_tasks(&imp, n, c, task)?;
            let mut line = format!("impl={imp} workload={workload} n={n} concurrency={c} wall_s={wall:.4}");
            line += &format!(" tasks_per_s={:.0}", n as f64 / wall);
            if workload == "sleep" {
                let ideal = n as f64 / c as f64 * task.as_secs_f64();
                line += &format!(" efficiency={:.4}", ideal / wall);
            }
            if workload == "alloc" {
                let per = work::allocations_per_task(n).ok_or("the allocation window was not reached")?;
                line += &format!(" allocs_per_task={per:.4}");
            }
            Ok(line)
        }
        "latency" => {
            let imp: String = arg(args, 1, "IMPL")?;
            let n: u64 = arg(args, 2, "N")?;
            work::probe_latency(n);
            run_tasks(&imp, n, 1, Duration::ZERO)?;
            let (p50, p99) = work::latency_percentiles().ok_or("no latency recorded")?;
            Ok(format!("impl={imp} workload=latency n={n} p50_us={p50:.3} p99_us={p99:.3}"))
        }
        "idle" => {
            let imp: String = arg(args, 1, "IMPL")?;
            let secs: f64 = arg(args, 2, "SECONDS")?;
            let cpu = idle(&imp, secs)?;
            Ok(format!(
                "impl={imp} workload=idle seconds={secs} cpu_s={cpu:.4} cpu_share={:.6}",
                cpu / secs
            ))
        }
        "sensors" => {
            let iterations: u32 = arg(args, 1, "ITERATIONS")?;
            let (memory, cpu) = sensor_cost(iterations)?;
            Ok(format!(
                "workload=sensors iterations={iterations} memory_us={memory:.3} cpu_us={cpu:.3}"
            ))
        }
        "smoke" => smoke(),
        _ => Err(format!(
            "usage: pool-bench noop|sleep|alloc|latency|idle|sensors|smoke ...; implementations: {}",
            IMPLS.join(", ")
        )
        .into()),
    }
}

fn tokio_mt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn tokio_ct() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

async fn tokio_sleep(d: Duration) {
    tokio::time::sleep(d).await;
}

async fn smol_sleep(d: Duration) {
    smol::Timer::after(d).await;
}

async fn async_std_sleep(d: Duration) {
    async_std::task::sleep(d).await;
}

/// No sleep: the task type of every no-op workload, so that all implementations move the same small future.
type NoSleep = fn(Duration) -> core::future::Ready<()>;

/// Runs `n` tasks on `imp` at concurrency `c`; returns the wall time in seconds, runtime set-up excluded.
fn run_tasks(imp: &str, n: u64, c: usize, task: Duration) -> Result<f64, Error> {
    work::reset(n);
    let wall = if task.is_zero() {
        run_with(imp, c, None::<(NoSleep, Duration)>)?
    } else if imp.contains("smol") {
        run_with(imp, c, Some((smol_sleep, task)))?
    } else if imp.contains("async_std") {
        run_with(imp, c, Some((async_std_sleep, task)))?
    } else {
        run_with(imp, c, Some((tokio_sleep, task)))?
    };
    if work::done() != n {
        return Err(format!("{imp} finished {} of {n} tasks", work::done()).into());
    }
    Ok(wall)
}

/// Runs the tasks with `sleep` (the sleep of `imp`'s runtime, or none) and times the run.
fn run_with<S, SF>(imp: &str, c: usize, sleep: Sleep<S>) -> Result<f64, Error>
where
    S: Fn(Duration) -> SF + Send + 'static,
    SF: Future<Output = ()> + Send + 'static,
{
    let (inplace, spawned) = (TaskMode::InPlace, TaskMode::Spawned);
    let t0;
    match imp {
        "pool_tokio_mt" | "pool_tokio_mt_spawned" | "pool_tokio_ct" => {
            let rt = if imp == "pool_tokio_ct" {
                tokio_ct()
            } else {
                tokio_mt()
            };
            let mode = if imp == "pool_tokio_mt_spawned" {
                spawned
            } else {
                inplace
            };
            t0 = Instant::now();
            rt.block_on(impls::pool::<TokioRuntime, _, _, _>(mode, c, (), sleep));
        }
        "pool_smol" => {
            t0 = Instant::now();
            smol::block_on(impls::pool::<SmolRuntime, _, _, _>(inplace, c, (), sleep));
        }
        "pool_async_std" => {
            t0 = Instant::now();
            async_std::task::block_on(impls::pool::<AsyncStdRuntime, _, _, _>(
                inplace,
                c,
                (),
                sleep,
            ));
        }
        "tokio_joinset" => {
            let rt = tokio_mt();
            t0 = Instant::now();
            rt.block_on(impls::tokio_joinset(c, sleep));
        }
        "inplace" => {
            let rt = tokio_ct();
            t0 = Instant::now();
            rt.block_on(impls::inplace(c, sleep));
        }
        "smol_spawn" => {
            t0 = Instant::now();
            smol::block_on(impls::smol_spawn(c, sleep));
        }
        "bare_loop" => {
            if sleep.is_some() {
                return Err("bare_loop runs no-op tasks only (it has no concurrency)".into());
            }
            let rt = tokio_ct();
            t0 = Instant::now();
            rt.block_on(impls::bare_loop(sleep));
        }
        other => {
            return Err(format!(
                "unknown implementation `{other}`; one of {}",
                IMPLS.join(", ")
            )
            .into());
        }
    }
    Ok(t0.elapsed().as_secs_f64())
}

/// Process CPU seconds of a pool that has nothing to do for `secs`, with the real system sensors.
fn idle(imp: &str, secs: f64) -> Result<f64, Error> {
    let sensors = || SystemSensors::new(SensorSettings::default());
    Ok(match imp {
        "pool_tokio_mt" => tokio_mt().block_on(impls::pool_idle::<TokioRuntime, _, _, _>(
            secs,
            sensors(),
            tokio_sleep,
        )),
        "pool_tokio_ct" => tokio_ct().block_on(impls::pool_idle::<TokioRuntime, _, _, _>(
            secs,
            sensors(),
            tokio_sleep,
        )),
        "pool_smol" => smol::block_on(impls::pool_idle::<SmolRuntime, _, _, _>(
            secs,
            sensors(),
            smol_sleep,
        )),
        "pool_async_std" => async_std::task::block_on(
            impls::pool_idle::<AsyncStdRuntime, _, _, _>(secs, sensors(), async_std_sleep),
        ),
        other => return Err(format!("no idle workload for `{other}` (pools only)").into()),
    })
}

/// µs per memory sample and per CPU sample of `pool-sensors` on this machine.
fn sensor_cost(iterations: u32) -> Result<(f64, f64), Error> {
    let mut w = Warnings::new();
    let root = SensorRoot::new("/");
    let pid = std::process::id();
    let mut memory = MemorySensor::new(root.clone(), pid);
    memory
        .read(&mut w)
        .ok_or("the memory sensor reads nothing here")?;
    let t0 = Instant::now();
    for _ in 0..iterations {
        core::hint::black_box(memory.read(&mut w));
    }
    let memory_us = t0.elapsed().as_secs_f64() * 1e6 / f64::from(iterations);
    let mut cpu = CpuSensor::new(root, pid, CpuMode::Auto);
    // CPU readings are deltas over at least 10 ms of the pool's clock: step a virtual clock by 1 s.
    let at = |i: u32| pool_core::Instant::from_nanos(u64::from(i) * 1_000_000_000);
    let _ = cpu.read(at(0), &mut w);
    let t0 = Instant::now();
    for i in 1..=iterations {
        core::hint::black_box(cpu.read(at(i), &mut w));
    }
    let cpu_us = t0.elapsed().as_secs_f64() * 1e6 / f64::from(iterations);
    Ok((memory_us, cpu_us))
}

/// Every implementation once on a tiny input, so CI can tell that the benchmark still builds and runs.
fn smoke() -> Result<String, Error> {
    for imp in IMPLS {
        run_tasks(imp, 2_000, 10, Duration::ZERO)?;
        if *imp != "bare_loop" {
            run_tasks(imp, 20, 10, Duration::from_millis(1))?;
        }
    }
    work::probe_allocations();
    run_tasks("pool_tokio_ct", 2_000, 10, Duration::ZERO)?;
    work::allocations_per_task(2_000).ok_or("the allocation window was not reached")?;
    for imp in [
        "pool_tokio_mt",
        "pool_tokio_ct",
        "pool_smol",
        "pool_async_std",
    ] {
        idle(imp, 0.05)?;
    }
    sensor_cost(3)?;
    Ok(format!("smoke: {} implementations ran", IMPLS.len()))
}
