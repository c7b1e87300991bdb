//! The typed reader over the resolved HOCON tree.
//!
//! Each section asks for its keys by dotted path (`reader.size("mqtt.max_packet_size",
//! default)`); the reader converts and validates the value, records a [`Problem`] with the key's
//! location when it is invalid, and remembers which keys were consumed. Whatever was not
//! consumed afterwards is either a NanoMQ setting Tern ignores or an unknown key (a typo), which
//! [`Reader::finish`] turns into warnings. Serde derive is not used because its errors lose the
//! key path and it cannot apply NanoMQ's units.

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use hocon::{HoconValue, ScalarType};

use crate::error::Problem;
use crate::keys;
use crate::source::{SourceIndex, normalize};
use crate::units::{ByteSize, PlainUnit, parse_duration};

/// Reads typed values out of the tree, collecting problems and warnings.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    root: &'a HoconValue,
    index: &'a SourceIndex,
    base_dir: &'a Path,
    /// Paths whose whole subtree was consumed.
    consumed: HashSet<String>,
    /// Containers (objects, arrays) the reader walked into; their children are checked one by
    /// one.
    visited: HashSet<String>,
    /// Every path a section asked for, present or not (for "did you mean" suggestions).
    known: BTreeSet<String>,
    problems: Vec<Problem>,
    warnings: Vec<String>,
}

impl<'a> Reader<'a> {
    pub fn new(root: &'a HoconValue, index: &'a SourceIndex, base_dir: &'a Path) -> Self {
        Self {
            root,
            index,
            base_dir,
            consumed: HashSet::new(),
            visited: HashSet::new(),
            known: BTreeSet::new(),
            problems: Vec::new(),
            warnings: Vec::new(),
        }
    }

    // ----- bookkeeping -------------------------------------------------------------------

    /// Record an invalid value at `key`.
    pub fn error(&mut self, key: &str, reason: impl Into<String>) {
        self.problems.push(Problem {
            location: self.index.locate(key),
            key: key.to_string(),
            reason: reason.into(),
        });
    }

    /// Record a warning (printed once by the caller).
    pub fn warn(&mut self, message: impl Into<String>) {
        self.warnings.push(message.into());
    }

    /// Where `key` was written, for warnings.
    pub fn location(&self, key: &str) -> String {
        self.index.locate(key).to_string()
    }

    /// Mark `key` and everything below it as consumed.
    pub fn consume(&mut self, key: &str) {
        self.known.insert(key.to_string());
        self.consumed.insert(key.to_string());
    }

    /// The included file `key`'s value came from, if any.
    pub fn include_for(&self, key: &str) -> Option<PathBuf> {
        self.index.include_for(key).map(Path::to_path_buf)
    }

    /// The value at `key`; `""` is the root (standalone password and ACL files).
    fn lookup(&self, key: &str) -> Option<&'a HoconValue> {
        if key.is_empty() {
            return Some(self.root);
        }
        key.split('.').try_fold(self.root, |node, segment| match node {
            HoconValue::Object(map) => map.get(segment),
            HoconValue::Array(items) => items.get(segment.parse::<usize>().ok()?),
            _ => None,
        })
    }

    /// The raw value at `key`; `null` counts as absent. Records `key` as known.
    pub fn raw(&mut self, key: &str) -> Option<&'a HoconValue> {
        self.known.insert(key.to_string());
        let value = self.lookup(key)?;
        if value.is_null() {
            self.consume(key);
            return None;
        }
        Some(value)
    }

    /// Whether `key` is present (not consumed by asking).
    pub fn has(&mut self, key: &str) -> bool {
        self.known.insert(key.to_string());
        self.lookup(key).is_some_and(|v| !v.is_null())
    }

    // ----- scalars -----------------------------------------------------------------------

    /// The text of a scalar at `key` (numbers and booleans as written).
    pub fn text(&mut self, key: &str) -> Option<String> {
        let value = self.raw(key)?;
        self.consume(key);
        match value {
            HoconValue::Scalar(s) => Some(s.raw.clone()),
            HoconValue::Object(_) => {
                self.error(key, "must be a value, not a block");
                None
            }
            _ => {
                self.error(key, "must be a single value, not a list");
                None
            }
        }
    }

    /// The text of the scalar at `key` without consuming it or recording anything; `None` for
    /// an absent key, a block or a list.
    pub fn peek_text(&self, key: &str) -> Option<String> {
        match self.lookup(key) {
            Some(HoconValue::Scalar(s)) if s.value_type != ScalarType::Null => Some(s.raw.clone()),
            _ => None,
        }
    }

    /// A string, or `None` when absent.
    pub fn string(&mut self, key: &str) -> Option<String> {
        self.text(key)
    }

    /// A non-empty string, or `None` when absent; an empty string is an error.
    pub fn non_empty(&mut self, key: &str) -> Option<String> {
        let value = self.text(key)?;
        if value.trim().is_empty() {
            self.error(key, "must not be empty");
            return None;
        }
        Some(value)
    }

    /// A boolean (`true`/`false`, also `yes`/`no`, `on`/`off`).
    pub fn bool(&mut self, key: &str, default: bool) -> bool {
        let Some(value) = self.text(key) else { return default };
        match crate::env::parse_bool(&value) {
            Some(b) => b,
            None => {
                self.error(key, format!("{value:?} is not a boolean (use true or false)"));
                default
            }
        }
    }

    /// An unsigned integer in `min..=max`.
    fn uint(&mut self, key: &str, min: u64, max: u64) -> Option<u64> {
        let value = self.text(key)?;
        let trimmed = value.trim();
        let parsed = trimmed.parse::<u64>().ok().or_else(|| {
            // `1e3`, `2048.0`: whole numbers written as floats.
            let f = trimmed.parse::<f64>().ok()?;
            (f.fract() == 0.0 && f >= 0.0 && f <= u64::MAX as f64).then_some(f as u64)
        });
        let Some(n) = parsed else {
            if trimmed.starts_with('-') && trimmed[1..].trim().parse::<f64>().is_ok() {
                self.error(
                    key,
                    format!("{trimmed} is negative; expected a number from {min} to {max}"),
                );
            } else {
                self.error(key, format!("{value:?} is not a whole number"));
            }
            return None;
        };
        if n < min || n > max {
            self.error(key, format!("{n} is out of range (expected {min} to {max})"));
            return None;
        }
        Some(n)
    }

    /// A `u32` in `min..=max`.
    pub fn u32_in(&mut self, key: &str, default: u32, min: u32, max: u32) -> u32 {
        self.uint(key, min.into(), max.into())
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(default)
    }

    /// A `u16` in `min..=max`.
    pub fn u16_in(&mut self, key: &str, default: u16, min: u16, max: u16) -> u16 {
        self.uint(key, min.into(), max.into())
            .and_then(|n| u16::try_from(n).ok())
            .unwrap_or(default)
    }

    /// A number in `min..=max`.
    pub fn f64_in(&mut self, key: &str, default: f64, min: f64, max: f64) -> f64 {
        let Some(value) = self.text(key) else { return default };
        match value.trim().parse::<f64>() {
            Ok(n) if n.is_finite() && n >= min && n <= max => n,
            Ok(n) if n.is_finite() => {
                self.error(key, format!("{n} is out of range (expected {min} to {max})"));
                default
            }
            _ => {
                self.error(key, format!("{value:?} is not a number"));
                default
            }
        }
    }

    /// A size (`10MB`, `1KB`, plain integer = bytes) in `min..=max`, or `None` when absent.
    pub fn opt_size_in(&mut self, key: &str, min: ByteSize, max: ByteSize) -> Option<ByteSize> {
        let value = self.text(key)?;
        match ByteSize::parse(&value) {
            Ok(size) if size >= min && size <= max => Some(size),
            Ok(size) => {
                self.error(key, format!("{size} is out of range (expected {min} to {max})"));
                None
            }
            Err(reason) => {
                self.error(key, reason);
                None
            }
        }
    }

    /// A size with a default.
    pub fn size_in(
        &mut self,
        key: &str,
        default: ByteSize,
        min: ByteSize,
        max: ByteSize,
    ) -> ByteSize {
        self.opt_size_in(key, min, max).unwrap_or(default)
    }

    /// A duration (`500ms`, `10s`, `1m`, `1h`; a plain integer is in `plain` units), or `None`
    /// when absent.
    pub fn opt_duration(&mut self, key: &str, plain: PlainUnit) -> Option<Duration> {
        let value = self.text(key)?;
        match parse_duration(&value, plain) {
            Ok(d) => Some(d),
            Err(reason) => {
                self.error(key, reason);
                None
            }
        }
    }

    /// A duration with a default.
    pub fn duration(&mut self, key: &str, default: Duration, plain: PlainUnit) -> Duration {
        self.opt_duration(key, plain).unwrap_or(default)
    }

    /// One of `choices` (compared case-insensitively).
    pub fn choice<T: Copy>(&mut self, key: &str, default: T, choices: &[(&str, T)]) -> T {
        self.opt_choice(key, choices).unwrap_or(default)
    }

    /// One of `choices`, or `None` when absent or invalid.
    pub fn opt_choice<T: Copy>(&mut self, key: &str, choices: &[(&str, T)]) -> Option<T> {
        let value = self.text(key)?;
        let wanted = value.trim().to_ascii_lowercase();
        if let Some((_, v)) = choices.iter().find(|(name, _)| *name == wanted) {
            return Some(*v);
        }
        let names: Vec<&str> = choices.iter().map(|(name, _)| *name).collect();
        self.error(key, format!("unknown value {value:?} (use {})", keys::one_of(&names)));
        None
    }

    /// A path; a relative one is resolved against the working directory.
    pub fn path(&mut self, key: &str) -> Option<PathBuf> {
        let value = self.non_empty(key)?;
        Some(self.resolve(&value))
    }

    /// Resolve a path against the working directory.
    pub fn resolve(&self, value: &str) -> PathBuf {
        normalize(&self.base_dir.join(value))
    }

    /// A path that must name an existing file.
    pub fn existing_file(&mut self, key: &str, what: &str) -> Option<PathBuf> {
        let path = self.path(key)?;
        if !path.is_file() {
            self.error(key, format!("{what} {} does not exist", path.display()));
            return None;
        }
        Some(path)
    }

    // ----- containers --------------------------------------------------------------------

    /// A list of strings: a HOCON array of values, or one comma-separated string (the form
    /// environment variables use).
    pub fn string_list(&mut self, key: &str) -> Option<Vec<String>> {
        self.list_of_strings(key, true)
    }

    /// A list of strings where a single value is a one-element list (for values that may
    /// contain commas, such as topic filters).
    pub fn strings(&mut self, key: &str) -> Option<Vec<String>> {
        self.list_of_strings(key, false)
    }

    fn list_of_strings(&mut self, key: &str, split_commas: bool) -> Option<Vec<String>> {
        let value = self.raw(key)?;
        self.consume(key);
        match value {
            HoconValue::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    match item {
                        HoconValue::Scalar(s) if !item.is_null() => out.push(s.raw.clone()),
                        _ => self.error(&format!("{key}.{i}"), "must be a value"),
                    }
                }
                Some(out)
            }
            HoconValue::Scalar(s) if !split_commas => Some(vec![s.raw.clone()]),
            HoconValue::Scalar(s) => Some(
                s.raw
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect(),
            ),
            _ => {
                self.error(key, "must be a list, e.g. [a, b]");
                None
            }
        }
    }

    /// The keys of the block at `key`, in file order, or `None` when absent. The block is
    /// marked visited: its children must be read (or are reported as unknown).
    pub fn block(&mut self, key: &str) -> Option<Vec<String>> {
        let value = self.raw(key)?;
        match value {
            HoconValue::Object(map) => {
                self.visited.insert(key.to_string());
                Some(map.keys().cloned().collect())
            }
            _ => {
                self.consume(key);
                self.error(key, "must be a block ({ ... })");
                None
            }
        }
    }

    /// Whether the value at `key` is a block.
    pub fn is_block(&self, key: &str) -> bool {
        matches!(self.lookup(key), Some(HoconValue::Object(_)))
    }

    /// The number of elements of the list at `key`, or `None` when absent. The list is marked
    /// visited: its elements must be read.
    pub fn list_len(&mut self, key: &str) -> Option<usize> {
        let value = self.raw(key)?;
        match value {
            HoconValue::Array(items) => {
                self.visited.insert(key.to_string());
                Some(items.len())
            }
            _ => {
                self.consume(key);
                self.error(key, "must be a list ([ ... ])");
                None
            }
        }
    }

    /// The entries of a block of values (`headers`, `params`, a password map) in file order.
    /// Nested blocks are flattened with dots (`headers.x.y = 1` gives `x.y`). The whole block is
    /// consumed.
    pub fn entries(&mut self, key: &str) -> Option<Vec<(String, String)>> {
        let value = self.raw(key)?;
        self.consume(key);
        let HoconValue::Object(_) = value else {
            self.error(key, "must be a block of `name = value` entries");
            return None;
        };
        let mut out = Vec::new();
        self.flatten(key, "", value, &mut out);
        Some(out)
    }

    fn flatten(
        &mut self,
        key: &str,
        prefix: &str,
        value: &HoconValue,
        out: &mut Vec<(String, String)>,
    ) {
        let Some(map) = value.as_object() else { return };
        for (name, child) in map {
            let full = if prefix.is_empty() { name.clone() } else { format!("{prefix}.{name}") };
            match child {
                HoconValue::Object(_) => self.flatten(key, &full, child, out),
                HoconValue::Scalar(s) if !child.is_null() => out.push((full, s.raw.clone())),
                HoconValue::Scalar(_) => {}
                _ => self.error(&join(key, &full), "must be a single value, not a list"),
            }
        }
    }

    // ----- the end -----------------------------------------------------------------------

    /// Turn unconsumed keys into warnings and return the problems and warnings.
    pub fn finish(mut self, mut ignored: Vec<String>) -> (Vec<Problem>, Vec<String>) {
        let mut unknown = Vec::new();
        self.walk(self.root, "", &mut unknown);
        let mut warnings = std::mem::take(&mut self.warnings);
        for key in unknown {
            if let Some(prefix) = keys::ignored_prefix(&key) {
                let entry = prefix.to_string();
                if !ignored.contains(&entry) {
                    ignored.push(entry);
                }
                continue;
            }
            let location = self.location(&key);
            let hint = keys::suggest(&key, &self.known)
                .map(|k| format!("; did you mean {k}?"))
                .unwrap_or_default();
            warnings.push(format!("{location}: unknown key {key} is ignored{hint}"));
        }
        if !ignored.is_empty() {
            warnings.insert(
                0,
                format!(
                    "NanoMQ settings accepted but ignored by Tern: {} (see config/README.md)",
                    ignored.join(", ")
                ),
            );
        }
        (self.problems, warnings)
    }

    fn walk(&self, value: &HoconValue, key: &str, unknown: &mut Vec<String>) {
        if self.consumed.contains(key) {
            return;
        }
        match value {
            HoconValue::Object(map) => {
                if map.is_empty() && !key.is_empty() && !self.visited.contains(key) {
                    unknown.push(key.to_string());
                }
                for (name, child) in map {
                    self.walk(child, &join(key, name), unknown);
                }
            }
            HoconValue::Array(items) if self.visited.contains(key) => {
                for (i, child) in items.iter().enumerate() {
                    self.walk(child, &join(key, &i.to_string()), unknown);
                }
            }
            _ => unknown.push(key.to_string()),
        }
    }
}

/// `parent.child`, or `child` at the root.
pub(crate) fn join(parent: &str, child: &str) -> String {
    if parent.is_empty() { child.to_string() } else { format!("{parent}.{child}") }
}
