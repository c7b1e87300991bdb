//! The one error type of this crate: every message names the file, the line, the dotted key and
//! the reason, so an operator can fix the file without reading code.

use std::fmt;
use std::path::PathBuf;

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The configuration file itself could not be read.
    #[error("{}: cannot read the configuration file: {source}", path.display())]
    Read {
        /// The file that was asked for.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A HOCON syntax error, with the parser's line and column.
    #[error("{file}:{line}:{col}: syntax error: {message}")]
    Syntax {
        /// The file (or origin name) holding the error.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        col: usize,
        /// The parser's description.
        message: String,
    },
    /// An `include` names a file that does not exist. Plain HOCON skips a missing include
    /// silently; Tern refuses, because a missing password or ACL file would silently change who
    /// may connect.
    #[error("{file}:{line}: {key}: included file {} does not exist", path.display())]
    MissingInclude {
        /// The file holding the `include`.
        file: String,
        /// The line of the `include`.
        line: usize,
        /// The dotted key the include is attached to (`include` for a top-level include).
        key: String,
        /// The resolved path that was looked for.
        path: PathBuf,
    },
    /// One or more values are invalid; each [`Problem`] is printed on its own line.
    #[error("{}", DisplayProblems(.0))]
    Invalid(Vec<Problem>),
}

impl ConfigError {
    /// The individual problems when the error is [`ConfigError::Invalid`]; empty otherwise.
    pub fn problems(&self) -> &[Problem] {
        match self {
            Self::Invalid(problems) => problems,
            _ => &[],
        }
    }
}

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A file, with the line of the key when it could be located.
    File {
        /// The file name as given (or the origin name passed to `parse_str`).
        file: String,
        /// 1-based line, if known.
        line: Option<usize>,
    },
    /// An environment variable override.
    Env {
        /// The variable's name.
        var: String,
    },
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File { file, line: Some(line) } => write!(f, "{file}:{line}"),
            Self::File { file, line: None } => write!(f, "{file}"),
            Self::Env { var } => write!(f, "environment variable {var}"),
        }
    }
}

/// One invalid value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where the value was written.
    pub location: Location,
    /// The dotted key, e.g. `mqtt.max_packet_size` or `auth.acl.rules.2.permit`.
    pub key: String,
    /// What is wrong, e.g. `"10XB" is not a size (use B, KB, MB or GB)`.
    pub reason: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.location, self.key, self.reason)
    }
}

struct DisplayProblems<'a>(&'a [Problem]);

impl fmt::Display for DisplayProblems<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}
