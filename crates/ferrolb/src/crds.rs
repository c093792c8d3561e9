//! `ferrolb crds`: the CustomResourceDefinitions, on stdout or as one file per CRD.

use std::fs;
use std::path::PathBuf;

use anyhow::Context;
use ferrolb_model::crd::ResourceKind;
use ferrolb_model::manifests::{all_manifests_yaml, manifest_file_name, manifest_yaml};

use crate::Outcome;

/// Arguments of `ferrolb crds`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Write one file per CRD into this directory (created if needed) instead of printing a
    /// multi-document stream.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

pub fn run(args: &Args) -> anyhow::Result<Outcome> {
    let Some(directory) = &args.out else {
        print!("{}", all_manifests_yaml()?);
        return Ok(Outcome::Clean);
    };
    fs::create_dir_all(directory)
        .with_context(|| format!("cannot create {}", directory.display()))?;
    for kind in ResourceKind::ALL {
        let path = directory.join(manifest_file_name(kind));
        fs::write(&path, manifest_yaml(kind)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(Outcome::Clean)
}
