//! Reading the PATH arguments of `check` and `migrate`: files, directories, or `-` for
//! standard input.

use std::io::Read;
use std::path::PathBuf;

use ferrolb_model::files::{SourceError, SourceFile, read_paths};

/// Reads every path; `-` reads standard input once, under the name `<stdin>`.
pub fn read(paths: &[PathBuf]) -> (Vec<SourceFile>, Vec<SourceError>) {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        if path.as_os_str() == "-" {
            let mut text = String::new();
            match std::io::stdin().read_to_string(&mut text) {
                Ok(_) => files.push(SourceFile {
                    name: "<stdin>".to_owned(),
                    text,
                }),
                Err(error) => errors.push(SourceError {
                    path: "<stdin>".to_owned(),
                    message: error.to_string(),
                }),
            }
        } else {
            let (mut found, mut failed) = read_paths(std::slice::from_ref(path));
            files.append(&mut found);
            errors.append(&mut failed);
        }
    }
    (files, errors)
}
