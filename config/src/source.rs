//! Where each key was written: a line index over the main file and its includes, and the include
//! check that plain HOCON does not do.
//!
//! The HOCON library resolves the document but keeps no positions, so this module walks the
//! token stream of every file (the library's public `tokenize`) and records the line of each
//! dotted key, the way an editor's outline would. It is best effort by design: an error whose
//! key has no recorded line falls back to the nearest parent key's line. The same walk finds
//! every `include` directive and checks that the file exists, because HOCON silently skips a
//! missing include and a missing password or ACL file must not silently change who may connect.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use hocon::{Token, TokenKind};

use crate::error::{ConfigError, Location};

/// Includes nested deeper than this are not followed (the HOCON library reports real cycles).
const MAX_INCLUDE_DEPTH: usize = 16;

/// An `include` directive that was followed.
#[derive(Debug, Clone)]
pub(crate) struct IncludeSite {
    /// The dotted key the included object is attached to (`""` for a top-level include).
    pub key: String,
    /// The resolved path of the included file.
    pub path: PathBuf,
}

/// Positions of keys across the main file and its includes, plus the keys that environment
/// variables overrode.
#[derive(Debug, Default)]
pub(crate) struct SourceIndex {
    /// Display names of the files; index 0 is the main file.
    files: Vec<String>,
    /// Dotted key → (file index, 1-based line). Later definitions replace earlier ones, as in
    /// HOCON.
    lines: HashMap<String, (usize, usize)>,
    /// Includes in the order they were met.
    pub includes: Vec<IncludeSite>,
    /// Dotted key → the environment variable that set it.
    env: HashMap<String, String>,
}

impl SourceIndex {
    /// An index for a main file called `origin`, with nothing recorded yet.
    pub fn new(origin: &str) -> Self {
        Self { files: vec![origin.to_string()], ..Self::default() }
    }

    /// Record that `var` set `key`.
    pub fn record_env(&mut self, key: &str, var: &str) {
        self.env.insert(key.to_string(), var.to_string());
    }

    /// Where `key` was written: the environment variable that set it or one of its parents,
    /// else the file and line of the key or of its nearest recorded parent.
    pub fn locate(&self, key: &str) -> Location {
        let mut current = key;
        loop {
            if let Some(var) = self.env.get(current) {
                return Location::Env { var: var.clone() };
            }
            if let Some(&(file, line)) = self.lines.get(current) {
                return Location::File { file: self.file_name(file), line: Some(line) };
            }
            match current.rfind('.') {
                Some(dot) => current = &current[..dot],
                None => break,
            }
        }
        Location::File { file: self.file_name(0), line: None }
    }

    /// The file that included `key`'s value, when `key` was attached by an include.
    pub fn include_for(&self, key: &str) -> Option<&Path> {
        self.includes.iter().rev().find(|site| site.key == key).map(|site| site.path.as_path())
    }

    /// The display name of file `index`.
    fn file_name(&self, index: usize) -> String {
        self.files.get(index).cloned().unwrap_or_default()
    }

    /// Whether `path` is one of the included files (used to attribute the HOCON library's
    /// errors inside an included file to that file).
    pub fn included_file_name(&self, path: &Path) -> Option<String> {
        let wanted = normalize(path);
        self.includes
            .iter()
            .find(|site| site.path == wanted)
            .map(|site| site.path.display().to_string())
    }

    /// Walk the main file: record key lines, follow includes (relative to `base_dir`, the
    /// working directory for NanoMQ-style relative paths) and fail on a missing include.
    pub fn walk_main(&mut self, text: &str, base_dir: &Path) -> Result<(), ConfigError> {
        let mut chain = Vec::new();
        self.walk_file(text, 0, &[], base_dir, &mut chain)
    }

    fn walk_file(
        &mut self,
        text: &str,
        file: usize,
        prefix: &[String],
        include_base: &Path,
        chain: &mut Vec<PathBuf>,
    ) -> Result<(), ConfigError> {
        let tokens = hocon::tokenize(text).map_err(|e| ConfigError::Syntax {
            file: self.file_name(file),
            line: e.line,
            col: e.col,
            message: e.message,
        })?;
        let mut includes = Vec::new();
        TokenWalk { tokens: &tokens, pos: 0, index: self, file }.run(prefix, &mut includes);
        for directive in includes {
            self.follow_include(file, directive, include_base, chain)?;
        }
        Ok(())
    }

    fn follow_include(
        &mut self,
        file: usize,
        directive: IncludeDirective,
        include_base: &Path,
        chain: &mut Vec<PathBuf>,
    ) -> Result<(), ConfigError> {
        // `file("…")` resolves against the process's working directory in the HOCON library;
        // a bare or `required("…")` include against the including file's base, which for the
        // main file is the working directory we were given (NanoMQ semantics).
        let base = if directive.is_file {
            std::env::current_dir().unwrap_or_else(|_| include_base.to_path_buf())
        } else {
            include_base.to_path_buf()
        };
        let target = normalize(&base.join(&directive.path));
        let candidates: Vec<PathBuf> = if target.extension().is_some() {
            vec![target.clone()]
        } else {
            ["properties", "json", "conf"].iter().map(|ext| target.with_extension(ext)).collect()
        };
        let existing: Vec<PathBuf> = candidates.into_iter().filter(|p| p.is_file()).collect();
        let key = directive.prefix.join(".");
        if existing.is_empty() {
            return Err(ConfigError::MissingInclude {
                file: self.file_name(file),
                line: directive.line,
                key: if key.is_empty() { "include".to_string() } else { key },
                path: target,
            });
        }
        for path in existing {
            self.includes.push(IncludeSite { key: key.clone(), path: path.clone() });
            if chain.contains(&path) || chain.len() >= MAX_INCLUDE_DEPTH {
                continue;
            }
            if path.extension().is_some_and(|ext| ext == "properties") {
                continue;
            }
            let text = std::fs::read_to_string(&path)
                .map_err(|source| ConfigError::Read { path: path.clone(), source })?;
            self.files.push(path.display().to_string());
            let index = self.files.len() - 1;
            let child_base = path.parent().map(Path::to_path_buf).unwrap_or_default();
            chain.push(path.clone());
            let result = self.walk_file(&text, index, &directive.prefix, &child_base, chain);
            chain.pop();
            result?;
        }
        Ok(())
    }
}

/// Drop `.` components so that `/tmp/x/./etc/a.conf` prints as `/tmp/x/etc/a.conf`.
pub(crate) fn normalize(path: &Path) -> PathBuf {
    path.components().collect()
}

/// An `include` met during the walk.
struct IncludeDirective {
    prefix: Vec<String>,
    path: String,
    is_file: bool,
    line: usize,
}

/// What encloses the current token.
enum Frame {
    /// Inside an object whose dotted path is the vector.
    Object(Vec<String>),
    /// Inside an array: its path and the index of the next element.
    Array(Vec<String>, usize),
}

/// One pass over one file's tokens. It never fails and always advances, so malformed input
/// (already reported by the parser) cannot make it loop.
struct TokenWalk<'a> {
    tokens: &'a [Token],
    pos: usize,
    index: &'a mut SourceIndex,
    file: usize,
}

impl TokenWalk<'_> {
    fn kind(&self) -> TokenKind {
        self.tokens.get(self.pos).map_or(TokenKind::Eof, |t| t.kind.clone())
    }

    fn record(&mut self, path: &[String], line: usize) {
        self.index.lines.insert(path.join("."), (self.file, line));
    }

    fn run(&mut self, prefix: &[String], includes: &mut Vec<IncludeDirective>) {
        let mut stack = vec![Frame::Object(prefix.to_vec())];
        while let Some(token) = self.tokens.get(self.pos) {
            if token.kind == TokenKind::Eof {
                break;
            }
            let line = token.line;
            match stack.last_mut() {
                None => stack.push(Frame::Object(prefix.to_vec())),
                Some(Frame::Object(path)) => {
                    let path = path.clone();
                    match token.kind {
                        TokenKind::RBrace => {
                            self.pos += 1;
                            stack.pop();
                            if let Some(Frame::Array(_, next)) = stack.last_mut() {
                                *next += 1;
                            }
                        }
                        TokenKind::LBrace => {
                            // A root-level `{ … }` document.
                            self.pos += 1;
                            stack.push(Frame::Object(path));
                        }
                        TokenKind::Unquoted if token.value == "include" && self.is_include() => {
                            self.pos += 1;
                            includes.push(self.include(path, line));
                        }
                        TokenKind::Unquoted | TokenKind::QuotedString => {
                            let mut key = path;
                            while let Some(t) = self.tokens.get(self.pos) {
                                match t.kind {
                                    TokenKind::Unquoted => key.extend(
                                        t.value
                                            .split('.')
                                            .map(str::trim)
                                            .filter(|s| !s.is_empty())
                                            .map(String::from),
                                    ),
                                    TokenKind::QuotedString => key.push(t.value.clone()),
                                    _ => break,
                                }
                                self.pos += 1;
                            }
                            self.record(&key, line);
                            match self.kind() {
                                TokenKind::Equals | TokenKind::Colon | TokenKind::PlusEquals => {
                                    self.pos += 1;
                                    self.value(key, &mut stack);
                                }
                                TokenKind::LBrace => {
                                    self.pos += 1;
                                    stack.push(Frame::Object(key));
                                }
                                _ => self.pos += 1,
                            }
                        }
                        _ => self.pos += 1,
                    }
                }
                Some(Frame::Array(path, next)) => {
                    let mut element = path.clone();
                    element.push(next.to_string());
                    match token.kind {
                        TokenKind::Newline | TokenKind::Comma => self.pos += 1,
                        TokenKind::RBracket => {
                            self.pos += 1;
                            stack.pop();
                            if let Some(Frame::Array(_, next)) = stack.last_mut() {
                                *next += 1;
                            }
                        }
                        TokenKind::LBrace => {
                            self.pos += 1;
                            self.record(&element, line);
                            stack.push(Frame::Object(element));
                        }
                        TokenKind::LBracket => {
                            self.pos += 1;
                            self.record(&element, line);
                            stack.push(Frame::Array(element, 0));
                        }
                        _ => {
                            *next += 1;
                            self.record(&element, line);
                            self.skip_scalar(TokenKind::RBracket);
                        }
                    }
                }
            }
        }
    }

    /// After a key and its separator: an object, an array or a scalar.
    fn value(&mut self, key: Vec<String>, stack: &mut Vec<Frame>) {
        match self.kind() {
            TokenKind::LBrace => {
                self.pos += 1;
                stack.push(Frame::Object(key));
            }
            TokenKind::LBracket => {
                self.pos += 1;
                stack.push(Frame::Array(key, 0));
            }
            _ => self.skip_scalar(TokenKind::RBrace),
        }
    }

    /// Skip a scalar value up to the end of the line, a comma or the closing bracket `close`
    /// (which is left for the caller).
    fn skip_scalar(&mut self, close: TokenKind) {
        let start = self.pos;
        while let Some(t) = self.tokens.get(self.pos) {
            if t.kind == TokenKind::Newline || t.kind == TokenKind::Comma {
                break;
            }
            if t.kind == close || t.kind == TokenKind::Eof {
                break;
            }
            self.pos += 1;
        }
        if self.pos == start {
            self.pos += 1;
        }
    }

    /// Whether the `include` at the cursor starts a directive rather than being a key.
    fn is_include(&self) -> bool {
        match self.tokens.get(self.pos + 1) {
            Some(t) if t.kind == TokenKind::QuotedString => true,
            Some(t) if t.kind == TokenKind::Unquoted => {
                t.value.starts_with("required") || t.value.starts_with("file")
            }
            _ => false,
        }
    }

    /// Read an include directive (cursor after `include`) up to the end of its line.
    fn include(&mut self, prefix: Vec<String>, line: usize) -> IncludeDirective {
        let mut path = String::new();
        let mut is_file = false;
        while let Some(t) = self.tokens.get(self.pos) {
            match t.kind {
                TokenKind::QuotedString if path.is_empty() => path = t.value.clone(),
                TokenKind::Unquoted if t.value.contains("file") => is_file = true,
                TokenKind::Unquoted => {}
                _ => break,
            }
            self.pos += 1;
        }
        IncludeDirective { prefix, path, is_file, line }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line_of(index: &SourceIndex, key: &str) -> Option<usize> {
        match index.locate(key) {
            Location::File { line, .. } => line,
            Location::Env { .. } => None,
        }
    }

    #[test]
    fn records_lines_of_nested_keys() {
        let text = "mqtt {\n  max_packet_size = 10MB\n}\nlisteners.tcp {\n bind = \"0.0.0.0:1883\"\n}\n\
                    webhook {\n headers.content-type = \"a\"\n events = [\n  {\n   event = x\n  }\n  { event = y, topic = \"#\" }\n ]\n}\n\
                    log.to = [file, console]\n";
        let mut index = SourceIndex::new("t.conf");
        index.walk_main(text, Path::new("/nonexistent")).unwrap();
        assert_eq!(line_of(&index, "mqtt.max_packet_size"), Some(2));
        assert_eq!(line_of(&index, "listeners.tcp.bind"), Some(5));
        assert_eq!(line_of(&index, "webhook.headers.content-type"), Some(8));
        assert_eq!(line_of(&index, "webhook.events.0.event"), Some(11));
        assert_eq!(line_of(&index, "webhook.events.1.topic"), Some(13));
        assert_eq!(line_of(&index, "log.to"), Some(16));
        assert_eq!(line_of(&index, "log.to.1"), Some(16));
        // An unrecorded key falls back to its parent.
        assert_eq!(line_of(&index, "listeners.tcp.keyfile"), Some(4));
        assert_eq!(line_of(&index, "nothing.here"), None);
    }

    #[test]
    fn missing_include_is_an_error() {
        let text = "auth {\n  password = {include \"./etc/none.conf\"}\n}\n";
        let dir = tempfile::tempdir().unwrap();
        let err = SourceIndex::new("main.conf").walk_main(text, dir.path()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("main.conf:2: auth.password: included file"), "{msg}");
        assert!(msg.contains("etc/none.conf does not exist"), "{msg}");
        assert!(!msg.contains("/./"), "{msg}");
    }

    #[test]
    fn follows_includes_with_the_key_prefix() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("acl.conf"),
            "rules = [\n {permit = allow}\n {permit = deny}\n]\n",
        )
        .unwrap();
        let text = "auth {\n  acl = {include \"acl.conf\"}\n}\n";
        let mut index = SourceIndex::new("main.conf");
        index.walk_main(text, dir.path()).unwrap();
        match index.locate("auth.acl.rules.1.permit") {
            Location::File { file, line } => {
                assert!(file.ends_with("acl.conf"), "{file}");
                assert_eq!(line, Some(3));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(index.include_for("auth.acl"), Some(dir.path().join("acl.conf").as_path()));
    }
}
