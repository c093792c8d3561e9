//! Everything that can go wrong in the lab, with enough context to act on it.

use std::io;
use std::path::PathBuf;

use crate::spec::{LAB_SH_ENV, RouterKind};

#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// Network namespaces need root.
    #[error(
        "lab tests need root to create network namespaces (effective uid is {euid}): \
         run `sudo scripts/test.sh` (CI runs as root)"
    )]
    NotRoot {
        /// The effective uid of the test process.
        euid: u32,
    },
    /// `lab.sh` is not where the harness looks for it.
    #[error("lab script {} not found: run from the ferrolb repository or set {LAB_SH_ENV}", path.display())]
    ScriptMissing {
        /// Where the harness looked.
        path: PathBuf,
    },
    /// The spec asks for something the lab cannot do.
    #[error("invalid lab spec: {0}")]
    InvalidSpec(String),
    /// `lab.sh up` failed; `message` is its own one-line explanation (what is missing, how to
    /// fix it).
    #[error("lab {name} did not come up: {message}")]
    Up {
        /// The lab's name.
        name: String,
        /// What `lab.sh` said.
        message: String,
    },
    /// A command ran and failed.
    #[error("`{command}` failed ({status}): {output}")]
    Command {
        /// The command line.
        command: String,
        /// How it ended (exit code or signal).
        status: String,
        /// Its stderr, or its stdout when stderr was empty.
        output: String,
    },
    /// A command could not be started at all.
    #[error("could not run `{command}`: {source}")]
    Spawn {
        /// The command line.
        command: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A command printed something that is not the JSON it should print.
    #[error("`{command}` did not print JSON ({source}); it printed: {output}")]
    Json {
        /// The command line.
        command: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
        /// What it printed (truncated).
        output: String,
    },
    /// The calling thread could not join a network namespace.
    #[error("cannot enter network namespace {ns}: {reason}")]
    Netns {
        /// The namespace.
        ns: String,
        /// Why.
        reason: String,
    },
    /// The operation needs another router kind.
    #[error("{operation} needs a {needed} router, but lab {name} runs {actual}")]
    WrongRouter {
        /// What was asked.
        operation: &'static str,
        /// The router it needs.
        needed: RouterKind,
        /// The router the lab runs.
        actual: RouterKind,
        /// The lab's name.
        name: String,
    },
    /// A file-system operation on the lab's state failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// Why it failed.
        #[source]
        source: io::Error,
    },
}
