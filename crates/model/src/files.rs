//! Finding and reading the files `ferrolb check`, `ferrolb migrate` and the speaker's
//! configuration directory take: explicit files as given, directories searched recursively for
//! `.yaml`, `.yml` and `.json` files, in a stable (sorted) order.

use std::fs;
use std::path::{Path, PathBuf};

use thiserror::Error;

/// A file's name (as the user gave it, for messages) and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// The path as given or found, for messages.
    pub name: String,
    /// The whole file.
    pub text: String,
}

/// A path that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{path}: {message}")]
pub struct SourceError {
    /// The path as given or found.
    pub path: String,
    /// What went wrong.
    pub message: String,
}

/// Reads every path: a file is read whatever its name; a directory contributes its `.yaml`,
/// `.yml` and `.json` files, recursively, skipping hidden entries. Every problem is returned,
/// next to whatever could be read.
pub fn read_paths(paths: &[PathBuf]) -> (Vec<SourceFile>, Vec<SourceError>) {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found = Vec::new();
            if let Err(error) = collect_yaml_files(path, &mut found) {
                errors.push(error);
            }
            if found.is_empty() {
                errors.push(SourceError {
                    path: path.display().to_string(),
                    message: "no .yaml, .yml or .json files in this directory".to_owned(),
                });
            }
            for file in found {
                read_one(&file, &mut files, &mut errors);
            }
        } else {
            read_one(path, &mut files, &mut errors);
        }
    }
    (files, errors)
}

fn read_one(path: &Path, files: &mut Vec<SourceFile>, errors: &mut Vec<SourceError>) {
    match fs::read(path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => files.push(SourceFile {
                name: path.display().to_string(),
                text,
            }),
            Err(_) => errors.push(SourceError {
                path: path.display().to_string(),
                message: "not UTF-8 text".to_owned(),
            }),
        },
        Err(error) => errors.push(SourceError {
            path: path.display().to_string(),
            message: error.to_string(),
        }),
    }
}

fn collect_yaml_files(directory: &Path, found: &mut Vec<PathBuf>) -> Result<(), SourceError> {
    let entries = fs::read_dir(directory).map_err(|error| SourceError {
        path: directory.display().to_string(),
        message: error.to_string(),
    })?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            !path
                .file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with('.'))
        })
        .collect();
    paths.sort();
    for path in paths {
        if path.is_dir() {
            collect_yaml_files(&path, found)?;
        } else if path
            .extension()
            .and_then(|extension| extension.to_str())
            .is_some_and(|extension| matches!(extension, "yaml" | "yml" | "json"))
        {
            found.push(path);
        }
    }
    Ok(())
}
