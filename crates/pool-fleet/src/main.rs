//! The fleet benchmark (`cargo xtask fleet`, issue 14): `run` starts a redis-server and a server that counts
//! the requests in flight, then ten `member` processes, each one autoscaled pool (the default builder) on one
//! Redis budget. It kills a member with SIGKILL, restarts Redis, kills another, and writes
//! `summary.json` with what the server saw.

mod member;
mod run;
mod server;

use clap::{Parser, Subcommand};

/// `pool-fleet <command>`.
#[derive(Debug, Parser)]
#[command(
    about = "Ten processes on one Redis budget against a server that counts what is in flight."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The whole benchmark: Redis, the server, ten members, the kills and the restart, the summary.
    Run(run::Options),
    /// One member process (started by `run`).
    Member(member::Options),
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match Cli::parse().command {
        Command::Run(opts) => rt.block_on(run::run(opts)),
        Command::Member(opts) => rt.block_on(member::run(opts)),
    }
}
