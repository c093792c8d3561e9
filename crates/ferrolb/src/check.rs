//! `ferrolb check PATH...`: validates files or directories offline and prints every problem
//! with its file, line, document, object and field path.

use std::path::PathBuf;

use ferrolb_model::check::{Finding, Severity, check};

use crate::{Outcome, inputs};

/// Arguments of `ferrolb check`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// YAML or JSON files, directories (searched recursively for .yaml, .yml and .json), or `-`
    /// for standard input. Documents of any kind may be mixed; metallb.io resources are checked
    /// as the ferrolb resources they would convert to.
    #[arg(value_name = "PATH", required = true)]
    paths: Vec<PathBuf>,
}

pub fn run(args: &Args) -> anyhow::Result<Outcome> {
    let (files, unreadable) = inputs::read(&args.paths);
    let mut report = check(&files);
    let unreadable = unreadable.into_iter().map(|error| Finding {
        severity: Severity::Error,
        location: None,
        message: error.to_string(),
    });
    report.findings.splice(0..0, unreadable);
    print!("{report}");
    Ok(if report.has_errors() {
        Outcome::ProblemsFound
    } else {
        Outcome::Clean
    })
}
