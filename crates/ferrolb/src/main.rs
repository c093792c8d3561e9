//! The `ferrolb` command. Each subcommand is a sibling module with an `Args` struct and a `run`
//! function; this file only parses the command line and maps the outcome to an exit status.
//! The work itself (validation, conversion, manifests) lives in the library crates.

mod check;
mod controller;
mod crds;
mod daemon;
mod http;
mod inputs;
mod kubeclient;
mod migrate;
mod speaker;
mod status;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// ferrolb: BGP-first load balancing for bare-metal Kubernetes.
#[derive(Debug, Parser)]
#[command(name = "ferrolb", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per run; boxing the big variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Print the CustomResourceDefinitions, or write one file per CRD with --out.
    Crds(crds::Args),
    /// Validate ferrolb (and MetalLB) YAML offline; exit status 1 if anything is wrong.
    Check(check::Args),
    /// Convert MetalLB resources and its legacy ConfigMap into ferrolb.io YAML on stdout.
    Migrate(migrate::Args),
    /// Run the node agent: announce this node's service addresses from a folder of YAML.
    Speaker(speaker::Args),
    /// Run the cluster controller: assign LoadBalancer addresses from the ferrolb.io pools.
    Controller(controller::Args),
    /// Show a running speaker's sessions, routes, Services, pools or configuration state.
    Status(status::Args),
}

/// What a subcommand reports back: did it find problems in the user's input?
enum Outcome {
    Clean,
    ProblemsFound,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Crds(args) => crds::run(&args),
        Command::Check(args) => check::run(&args),
        Command::Migrate(args) => migrate::run(&args),
        Command::Speaker(args) => speaker::run(&args),
        Command::Controller(args) => controller::run(&args),
        Command::Status(args) => status::run(&args),
    };
    match result {
        Ok(Outcome::Clean) => ExitCode::SUCCESS,
        Ok(Outcome::ProblemsFound) => ExitCode::from(1),
        Err(error) => {
            eprintln!("ferrolb: {error:#}");
            ExitCode::from(1)
        }
    }
}
