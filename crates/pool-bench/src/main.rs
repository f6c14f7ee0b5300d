//! `pool-bench`: the benchmark binary behind `cargo xtask bench`. One measurement per process, printed as one
//! line of `key=value` figures (the format of the peers' scripts in `../shared/peers/`).
//!
//! ```text
//! pool-bench noop    IMPL N CONCURRENCY          -> tasks_per_s
//! pool-bench sleep   IMPL N CONCURRENCY TASK_MS  -> efficiency (ideal wall time / measured)
//! pool-bench cpu     IMPL N CONCURRENCY WORK_US  -> tasks_per_s (each task does WORK_US of real work)
//! pool-bench alloc   IMPL N CONCURRENCY          -> allocs_per_task (steady state, no-op tasks)
//! pool-bench latency IMPL N                      -> p50_us p99_us (task end to next start, concurrency 1)
//! pool-bench idle    IMPL SECONDS                -> cpu_share (CPU seconds per wall second)
//! pool-bench sensors ITERATIONS                  -> memory_us cpu_us (per sample)
//! pool-bench smoke                               -> every implementation once on a tiny input
//! ```
//!
//! IMPL is one of [`IMPLS`]. Each of our pools is named for what it runs:
//! - `pool_tokio_default`: exactly the default builder on tokio's multi-thread runtime ([`TaskMode::Workers`],
//!   the real system sensors, the adaptive policy), concurrency pinned at CONCURRENCY;
//! - `pool_tokio_autoscaled`: the same with CONCURRENCY as the ceiling only, so the policy scales;
//! - `pool_tokio_ct_default`: the default builder on tokio's current-thread runtime (its workers share the
//!   driver's one thread), concurrency pinned;
//! - `pool_tokio_spawned`: spawned tasks with `()` sensors; `pool_tokio_inplace`: tasks polled in place by
//!   the driver ([`TaskMode::InPlace`]) on the multi-thread runtime, `()` sensors;
//! - `pool_tokio_ct_inplace`, `pool_smol_inplace`, `pool_async_std_inplace`: in place on those runtimes;
//! - `stream_tokio_default`: the stream combinator (`AutoscaledStreamExt::autoscaled`) with the default
//!   builder (workers, real sensors), concurrency pinned; `stream_tokio_inplace`: the same in place with `()`
//!   sensors, both on tokio's multi-thread runtime.

mod impls;
mod os;
mod work;

use core::future::Future;
use core::time::Duration;
use std::process::ExitCode;
use std::time::Instant;

use clap::builder::PossibleValuesParser;
use clap::{Parser, Subcommand};

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
    "pool_tokio_default",
    "pool_tokio_autoscaled",
    "pool_tokio_spawned",
    "pool_tokio_inplace",
    "pool_tokio_ct_default",
    "pool_tokio_ct_inplace",
    "pool_smol_inplace",
    "pool_async_std_inplace",
    "stream_tokio_default",
    "stream_tokio_inplace",
    "tokio_joinset",
    "buffer_unordered_spawn",
    "buffer_unordered",
    "inplace",
    "smol_spawn",
    "bare_loop",
];

/// The implementations the idle workload runs: the default builder on each runtime (in place off tokio's
/// multi-thread runtime, where the mode makes no difference to a pool with nothing to run).
const IDLE: &[&str] = &[
    "pool_tokio_default",
    "pool_tokio_ct_inplace",
    "pool_smol_inplace",
    "pool_async_std_inplace",
];

type Error = Box<dyn core::error::Error>;

/// The command line: one workload per process.
#[derive(Debug, Parser)]
#[command(
    name = "pool-bench",
    about = "One benchmark measurement per run, printed as one line of key=value figures.",
    after_help = "Run by `cargo xtask bench`, which repeats and compares them."
)]
struct Cli {
    #[command(subcommand)]
    workload: Workload,
}

/// An implementation, checked against [`IMPLS`] by the parser so that a typo lists the valid names.
fn impl_arg() -> PossibleValuesParser {
    PossibleValuesParser::new(IMPLS)
}

#[derive(Debug, Subcommand)]
enum Workload {
    /// N no-op tasks at CONCURRENCY: prints tasks_per_s.
    Noop {
        /// The implementation.
        #[arg(value_name = "IMPL", value_parser = impl_arg())]
        imp: String,
        /// How many tasks to run.
        n: u64,
        /// How many tasks run at once.
        concurrency: usize,
    },
    /// N tasks that each sleep TASK_MS at CONCURRENCY: prints efficiency (ideal wall time over measured).
    Sleep {
        /// The implementation.
        #[arg(value_name = "IMPL", value_parser = impl_arg())]
        imp: String,
        /// How many tasks to run.
        n: u64,
        /// How many tasks run at once.
        concurrency: usize,
        /// How long each task sleeps, ms.
        task_ms: f64,
    },
    /// N tasks of WORK_US of real CPU work at CONCURRENCY: prints tasks_per_s.
    Cpu {
        /// The implementation.
        #[arg(value_name = "IMPL", value_parser = impl_arg())]
        imp: String,
        /// How many tasks to run.
        n: u64,
        /// How many tasks run at once.
        concurrency: usize,
        /// The work of each task, µs.
        work_us: f64,
    },
    /// N no-op tasks at CONCURRENCY: prints allocs_per_task in the steady state.
    Alloc {
        /// The implementation.
        #[arg(value_name = "IMPL", value_parser = impl_arg())]
        imp: String,
        /// How many tasks to run.
        n: u64,
        /// How many tasks run at once.
        concurrency: usize,
    },
    /// N tasks at concurrency 1: prints p50_us and p99_us from a task's end to the next one's start.
    Latency {
        /// The implementation.
        #[arg(value_name = "IMPL", value_parser = impl_arg())]
        imp: String,
        /// How many tasks to run.
        n: u64,
    },
    /// A pool with nothing to do for SECONDS: prints cpu_share (CPU seconds per wall second).
    Idle {
        /// The implementation.
        #[arg(value_name = "IMPL", value_parser = impl_arg())]
        imp: String,
        /// How long the pool idles, seconds.
        seconds: f64,
    },
    /// ITERATIONS samples of each system sensor: prints memory_us and cpu_us per sample.
    Sensors {
        /// Samples of each sensor.
        iterations: u32,
    },
    /// Every implementation once on a tiny input, so CI can tell that the benchmark still builds and runs.
    Smoke,
}

fn main() -> ExitCode {
    match run(Cli::parse().workload) {
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

/// Runs `n` no-op or sleeping tasks and describes the run; `alloc` also counts allocations per task.
fn tasks_line(
    workload: &str,
    imp: &str,
    n: u64,
    c: usize,
    task: Duration,
) -> Result<String, Error> {
    let alloc = workload == "alloc";
    if alloc {
        work::probe_allocations();
    }
    let wall = run_tasks(imp, n, c, task)?;
    let mut line = format!("impl={imp} workload={workload} n={n} concurrency={c} wall_s={wall:.4}");
    line += &format!(" tasks_per_s={:.0}", n as f64 / wall);
    if workload == "sleep" {
        let ideal = n as f64 / c as f64 * task.as_secs_f64();
        line += &format!(" efficiency={:.4}", ideal / wall);
    }
    if alloc {
        let per = work::allocations_per_task(n).ok_or("the allocation window was not reached")?;
        line += &format!(" allocs_per_task={per:.4}");
    }
    Ok(line)
}

fn run(workload: Workload) -> Result<String, Error> {
    match workload {
        Workload::Noop {
            imp,
            n,
            concurrency,
        } => tasks_line("noop", &imp, n, concurrency, Duration::ZERO),
        Workload::Sleep {
            imp,
            n,
            concurrency,
            task_ms,
        } => {
            let task = Duration::try_from_secs_f64(task_ms / 1000.0)
                .map_err(|_| format!("bad TASK_MS: `{task_ms}`"))?;
            tasks_line("sleep", &imp, n, concurrency, task)
        }
        Workload::Cpu {
            imp,
            n,
            concurrency,
            work_us,
        } => {
            work::set_task_work(work_us);
            tasks_line("cpu", &imp, n, concurrency, Duration::ZERO)
        }
        Workload::Alloc {
            imp,
            n,
            concurrency,
        } => tasks_line("alloc", &imp, n, concurrency, Duration::ZERO),
        Workload::Latency { imp, n } => {
            work::probe_latency(n);
            run_tasks(&imp, n, 1, Duration::ZERO)?;
            let (p50, p99) = work::latency_percentiles().ok_or("no latency recorded")?;
            Ok(format!(
                "impl={imp} workload=latency n={n} p50_us={p50:.3} p99_us={p99:.3}"
            ))
        }
        Workload::Idle { imp, seconds } => {
            let cpu = idle(&imp, seconds)?;
            Ok(format!(
                "impl={imp} workload=idle seconds={seconds} cpu_s={cpu:.4} cpu_share={:.6}",
                cpu / seconds
            ))
        }
        Workload::Sensors { iterations } => {
            let (memory, cpu) = sensor_cost(iterations)?;
            Ok(format!(
                "workload=sensors iterations={iterations} memory_us={memory:.3} cpu_us={cpu:.3}"
            ))
        }
        Workload::Smoke => smoke(),
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
    let real = || SystemSensors::new(SensorSettings::default());
    let t0;
    match imp {
        "pool_tokio_default" | "pool_tokio_autoscaled" => {
            let rt = tokio_mt();
            let autoscaled = imp == "pool_tokio_autoscaled";
            t0 = Instant::now();
            rt.block_on(impls::pool::<TokioRuntime, _, _, _>(
                TaskMode::default(),
                c,
                autoscaled,
                real(),
                sleep,
            ));
        }
        "pool_tokio_ct_default" => {
            let rt = tokio_ct();
            t0 = Instant::now();
            rt.block_on(impls::pool::<TokioRuntime, _, _, _>(
                TaskMode::default(),
                c,
                false,
                real(),
                sleep,
            ));
        }
        "pool_tokio_spawned" | "pool_tokio_inplace" | "pool_tokio_ct_inplace" => {
            let rt = if imp == "pool_tokio_ct_inplace" {
                tokio_ct()
            } else {
                tokio_mt()
            };
            let mode = if imp == "pool_tokio_spawned" {
                spawned
            } else {
                inplace
            };
            t0 = Instant::now();
            rt.block_on(impls::pool::<TokioRuntime, _, _, _>(
                mode,
                c,
                false,
                (),
                sleep,
            ));
        }
        "pool_smol_inplace" => {
            t0 = Instant::now();
            smol::block_on(impls::pool::<SmolRuntime, _, _, _>(
                inplace,
                c,
                false,
                (),
                sleep,
            ));
        }
        "pool_async_std_inplace" => {
            t0 = Instant::now();
            async_std::task::block_on(impls::pool::<AsyncStdRuntime, _, _, _>(
                inplace,
                c,
                false,
                (),
                sleep,
            ));
        }
        "stream_tokio_default" => {
            let rt = tokio_mt();
            t0 = Instant::now();
            rt.block_on(impls::stream::<TokioRuntime, _, _, _>(
                TaskMode::default(),
                c,
                real(),
                sleep,
            ));
        }
        "stream_tokio_inplace" => {
            let rt = tokio_mt();
            t0 = Instant::now();
            rt.block_on(impls::stream::<TokioRuntime, _, _, _>(
                inplace,
                c,
                (),
                sleep,
            ));
        }
        "buffer_unordered" => {
            let rt = tokio_mt();
            t0 = Instant::now();
            rt.block_on(impls::buffer_unordered(c, sleep));
        }
        "buffer_unordered_spawn" => {
            let rt = tokio_mt();
            t0 = Instant::now();
            rt.block_on(impls::buffer_unordered_spawn(c, sleep));
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
    let inplace = TaskMode::InPlace;
    Ok(match imp {
        "pool_tokio_default" => tokio_mt().block_on(impls::pool_idle::<TokioRuntime, _, _, _>(
            TaskMode::default(),
            secs,
            sensors(),
            tokio_sleep,
        )),
        "pool_tokio_ct_inplace" => tokio_ct().block_on(impls::pool_idle::<TokioRuntime, _, _, _>(
            inplace,
            secs,
            sensors(),
            tokio_sleep,
        )),
        "pool_smol_inplace" => smol::block_on(impls::pool_idle::<SmolRuntime, _, _, _>(
            inplace,
            secs,
            sensors(),
            smol_sleep,
        )),
        "pool_async_std_inplace" => {
            async_std::task::block_on(impls::pool_idle::<AsyncStdRuntime, _, _, _>(
                inplace,
                secs,
                sensors(),
                async_std_sleep,
            ))
        }
        other => return Err(format!("no idle workload for `{other}`").into()),
    })
}

/// µs per memory sample and per CPU sample of `pool-sensors` on this machine.
fn sensor_cost(iterations: u32) -> Result<(f64, f64), Error> {
    let mut w = Warnings::new();
    let root = SensorRoot::new("/");
    let pid = std::process::id();
    // As the pool samples: once a second of its clock (a virtual one here), so what the sensors look up
    // only every `LAYOUT_RECHECK` is spread over the samples as it is in a run.
    let at = |i: u32| pool_core::Instant::from_nanos(u64::from(i) * 1_000_000_000);
    let mut memory = MemorySensor::new(root.clone(), pid);
    memory
        .read_at(at(0), &mut w)
        .ok_or("the memory sensor reads nothing here")?;
    let t0 = Instant::now();
    for i in 1..=iterations {
        core::hint::black_box(memory.read_at(at(i), &mut w));
    }
    let memory_us = t0.elapsed().as_secs_f64() * 1e6 / f64::from(iterations);
    let mut cpu = CpuSensor::new(root, pid, CpuMode::Auto);
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
    run_tasks("pool_tokio_ct_inplace", 2_000, 10, Duration::ZERO)?;
    work::allocations_per_task(2_000).ok_or("the allocation window was not reached")?;
    for imp in IDLE {
        idle(imp, 0.05)?;
    }
    work::set_task_work(1.0);
    run_tasks("pool_tokio_default", 200, 10, Duration::ZERO)?;
    sensor_cost(3)?;
    Ok(format!("smoke: {} implementations ran", IMPLS.len()))
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn the_command_line_is_well_formed_and_reads_the_xtask_forms() {
        Cli::command().debug_assert();
        let cli =
            Cli::try_parse_from(["pool-bench", "sleep", "pool_smol_inplace", "20", "10", "1"])
                .unwrap();
        assert!(matches!(
            cli.workload,
            Workload::Sleep {
                n: 20,
                concurrency: 10,
                ..
            }
        ));
        assert!(Cli::try_parse_from(["pool-bench", "noop", "tokio", "1", "1"]).is_err());
    }
}
