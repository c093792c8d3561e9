//! Running commands and reporting their failures with the command line, status and output.

use std::process::{Command, ExitStatus, Output};

use crate::error::LabError;

pub(crate) fn render_command(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| {
            let a = a.to_string_lossy();
            if a.is_empty() || a.contains(char::is_whitespace) {
                format!("'{a}'")
            } else {
                a.into_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

pub(crate) fn run(cmd: &mut Command) -> Result<Output, LabError> {
    cmd.output().map_err(|source| LabError::Spawn {
        command: render_command(cmd),
        source,
    })
}

pub(crate) fn run_ok(cmd: &mut Command) -> Result<String, LabError> {
    let output = run(cmd)?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(command_error(cmd, &output))
    }
}

pub(crate) fn command_error(cmd: &Command, output: &Output) -> LabError {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let text = if stderr.trim().is_empty() {
        String::from_utf8_lossy(&output.stdout).into_owned()
    } else {
        stderr.into_owned()
    };
    LabError::Command {
        command: render_command(cmd),
        status: describe_status(output.status),
        output: truncate(text.trim()),
    }
}

pub(crate) fn describe_status(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => status.to_string(),
    }
}

/// `lab.sh`'s own explanation: its `error:` lines, else the end of its stderr.
pub(crate) fn script_message(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("lab.sh: error:"))
        .collect();
    let text = if errors.is_empty() {
        let lines: Vec<&str> = stderr.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    } else {
        // The error line, followed by any log lines lab.sh printed after it.
        let first = stderr.find("lab.sh: error:").unwrap_or(0);
        stderr[first..].trim().to_owned()
    };
    if text.trim().is_empty() {
        format!("lab.sh exited with {}", describe_status(output.status))
    } else {
        text
    }
}

pub(crate) fn parse_json(what: &str, text: &str) -> Result<serde_json::Value, LabError> {
    serde_json::from_str(text).map_err(|source| LabError::Json {
        command: what.to_owned(),
        source,
        output: truncate(text),
    })
}

pub(crate) fn truncate(text: &str) -> String {
    const MAX: usize = 4000;
    if text.len() <= MAX {
        return text.to_owned();
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes in all)", &text[..end], text.len())
}
