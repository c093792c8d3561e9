//! `ferrolb migrate PATH...`: MetalLB configuration in, ferrolb.io YAML out (stdout), and on
//! stderr a line for everything converted, dropped, skipped or still wrong.

use std::path::PathBuf;

use ferrolb_model::migrate::{DEFAULT_NAMESPACE, migrate};

use crate::{Outcome, inputs};

/// Arguments of `ferrolb migrate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// MetalLB YAML: metallb.io resources (v1beta1, v1beta2) and/or the legacy `config`
    /// ConfigMap. Files, directories, or `-` for standard input.
    #[arg(value_name = "PATH", required = true)]
    paths: Vec<PathBuf>,

    /// The namespace to put the ferrolb resources in.
    #[arg(long, default_value = DEFAULT_NAMESPACE)]
    namespace: String,
}

pub fn run(args: &Args) -> anyhow::Result<Outcome> {
    let (files, unreadable) = inputs::read(&args.paths);
    for error in &unreadable {
        eprintln!("error: {error}");
    }
    let report = migrate(&files, &args.namespace);
    print!("{}", report.yaml);
    for finding in &report.findings {
        eprintln!("{finding}");
    }
    eprintln!(
        "{} ferrolb resource{} written{}",
        report.objects,
        if report.objects == 1 { "" } else { "s" },
        if report.has_errors() || !unreadable.is_empty() {
            "; fix the errors above before applying them"
        } else {
            ""
        }
    );
    Ok(if report.has_errors() || !unreadable.is_empty() {
        Outcome::ProblemsFound
    } else {
        Outcome::Clean
    })
}
