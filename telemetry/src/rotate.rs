//! A log file rotated by size, as NanoMQ's `log.rotation { size, count }`.

use std::{
    fs::{File, OpenOptions},
    io::{self, Write},
    path::{Path, PathBuf},
};

/// Appends to `path`; when the next write would take it past `max_size` bytes, renames
/// `path.<n>` to `path.<n+1>` (dropping the oldest beyond `keep`), `path` to `path.1`, and starts
/// a new `path`.
#[derive(Debug)]
pub struct RotatingFile {
    path: PathBuf,
    file: File,
    size: u64,
    max_size: u64,
    keep: u32,
}

impl RotatingFile {
    /// Opens (creating the directory and the file if needed) for appending.
    pub fn open(path: &Path, max_size: u64, keep: u32) -> io::Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(Self { path: path.to_path_buf(), file, size, max_size: max_size.max(1), keep })
    }

    fn numbered(&self, n: u32) -> PathBuf {
        let mut name = self.path.as_os_str().to_owned();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.file.flush()?;
        if self.keep == 0 {
            // Nothing kept: start the file over.
            self.file =
                OpenOptions::new().create(true).write(true).truncate(true).open(&self.path)?;
            self.size = 0;
            return Ok(());
        }
        let _ = std::fs::remove_file(self.numbered(self.keep));
        for n in (1..self.keep).rev() {
            let from = self.numbered(n);
            if from.exists() {
                std::fs::rename(&from, self.numbered(n + 1))?;
            }
        }
        std::fs::rename(&self.path, self.numbered(1))?;
        self.file = OpenOptions::new().create(true).append(true).open(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

impl Write for RotatingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.size > 0 && self.size + buf.len() as u64 > self.max_size {
            self.rotate()?;
        }
        let n = self.file.write(buf)?;
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_by_size_and_keeps_count_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("logs/tern.log");
        let mut f = RotatingFile::open(&path, 100, 2).expect("open");
        for i in 0..10 {
            // 60-byte lines, written whole (as the logger does): one per file.
            f.write_all(format!("{i:0>59}\n").as_bytes()).expect("write");
        }
        f.flush().expect("flush");
        let read = |p: PathBuf| std::fs::read_to_string(p).expect("read");
        assert!(read(path.clone()).starts_with("0000000000"), "the newest line is in the file");
        assert!(read(path.clone()).trim_end().ends_with('9'));
        assert!(read(f.numbered(1)).trim_end().ends_with('8'));
        assert!(read(f.numbered(2)).trim_end().ends_with('7'));
        assert!(!f.numbered(3).exists(), "only `keep` rotated files remain");
    }

    #[test]
    fn reopening_appends() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.log");
        writeln!(RotatingFile::open(&path, 1000, 1).expect("open"), "one").expect("write");
        writeln!(RotatingFile::open(&path, 1000, 1).expect("open"), "two").expect("write");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "one\ntwo\n");
    }
}
