//! One agent per data directory.
//!
//! Two agents on one queue database would both pick the same queued job, and with a
//! `tcp:` register both could send it: a receipt printed twice. So the daemon holds an
//! exclusive lock on `agent.lock` in its data directory for its whole life, and a
//! second `serve` on the same directory refuses to start, naming the process that
//! holds it. The lock is the OS's (`flock` on Unix, `LockFileEx` on Windows, through
//! `std::fs::File::try_lock`), so it is released when the process dies, even by
//! `kill -9` or a power cut: there is no stale lock file to clean up.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::Path;

/// Held while the daemon runs.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another kkm-agent ({holder}) already uses this data directory")]
    Held { holder: String },
    #[error("cannot lock the data directory: {0}")]
    Io(#[from] std::io::Error),
}

impl LockError {
    pub fn ru(&self) -> String {
        match self {
            LockError::Held { holder } => format!(
                "Папку данных уже использует другой kkm-agent ({holder}). Остановите его (службу kkm-agent или второй запуск) или укажите другой data_dir"
            ),
            LockError::Io(e) => format!("Не удалось заблокировать папку данных: {e}"),
        }
    }
}

pub fn acquire(dir: &Path) -> Result<DataDirLock, LockError> {
    let path = dir.join("agent.lock");
    let mut file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            let holder = match text.trim() {
                "" => "PID неизвестен / PID unknown".to_string(),
                pid => format!("PID {pid}"),
            };
            return Err(LockError::Held { holder });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(LockError::Io(e)),
    }
    file.set_len(0)?;
    file.rewind()?;
    write!(file, "{}", std::process::id())?;
    file.flush()?;
    Ok(DataDirLock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_dir_is_refused_with_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let first = acquire(dir.path()).unwrap();
        match acquire(dir.path()) {
            Err(LockError::Held { holder }) => assert!(holder.contains(&std::process::id().to_string()), "{holder}"),
            other => panic!("expected Held, got {other:?}"),
        }
        drop(first);
        acquire(dir.path()).expect("free again once the holder is gone");
    }
}
