//! The exclusive lock a running node holds on its home, so that a second
//! `stele-node start` on the same home is told so before it binds a port or
//! opens the database (either of which would fail with a message that
//! names the port or RocksDB's `LOCK` file instead).

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::HomeError;

/// The lock file in a home; it holds the pid of the process that has it.
pub const LOCK_FILE: &str = "stele-node.lock";

/// Most bytes of the lock file read for the holder's pid.
const PID_TEXT_BYTES_MAX: u64 = 32;

/// An exclusive lock on a home, held until dropped (or the process ends,
/// whichever way: the OS releases it). The file stays behind; only the
/// lock says whether a node runs.
#[derive(Debug)]
pub struct HomeLock {
    _file: File,
    path: PathBuf,
}

impl HomeLock {
    /// Takes the lock of `home` without waiting, writing this process's
    /// pid into the lock file. Fails naming the holder's pid if another
    /// process (or another start in this one) holds it.
    pub fn acquire(home: &Path) -> Result<HomeLock, HomeError> {
        let path = home.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| HomeError::io("open the lock file", &path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let holder = match read_pid(&mut file) {
                    Some(pid) => format!(" (pid {pid})"),
                    None => String::new(),
                };
                return Err(HomeError(format!(
                    "another stele-node is using {}{holder}: {} is locked; stop that node first",
                    home.display(),
                    path.display()
                )));
            }
            Err(TryLockError::Error(e)) => {
                return Err(HomeError::io("lock", &path, e));
            }
        }
        let pid = std::process::id();
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| writeln!(file, "{pid}"))
            .and_then(|()| file.flush())
            .map_err(|e| HomeError::io("write", &path, e))?;
        Ok(HomeLock { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The pid the holder wrote, if the file holds one.
fn read_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    Read::take(&*file, PID_TEXT_BYTES_MAX)
        .read_to_string(&mut text)
        .ok()?;
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_a_home_fails_naming_the_holder_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().expect("a temporary dir");
        let first = HomeLock::acquire(dir.path()).expect("the first lock");
        let text = std::fs::read_to_string(first.path()).expect("the lock file");
        assert_eq!(text.trim(), std::process::id().to_string());
        let e = HomeLock::acquire(dir.path())
            .expect_err("a second lock")
            .to_string();
        assert!(
            e.contains(&format!(
                "another stele-node is using {} (pid {})",
                dir.path().display(),
                std::process::id()
            )),
            "{e}"
        );
        assert!(e.contains(LOCK_FILE), "{e}");
        drop(first);
        let again = HomeLock::acquire(dir.path()).expect("the lock once freed");
        drop(again);
    }

    #[test]
    fn a_lock_file_left_by_a_dead_node_does_not_lock_the_home() {
        let dir = tempfile::tempdir().expect("a temporary dir");
        std::fs::write(dir.path().join(LOCK_FILE), "4242424\n").expect("an old lock file");
        let lock = HomeLock::acquire(dir.path()).expect("the lock");
        let text = std::fs::read_to_string(lock.path()).expect("the lock file");
        assert_eq!(text.trim(), std::process::id().to_string());
    }
}
