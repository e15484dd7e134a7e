//! The agent's data files are readable by the service user only.
//!
//! The queue database holds customers' phones and e-mails and cashiers' ИНН (personal
//! data), the token opens the API, and the logs name receipts. On Unix the daemon sets
//! its umask to 077 at start, so every file it creates (SQLite's `-wal` and `-shm`,
//! rotated logs) is private from birth, and it tightens what already exists from an
//! older version (0700 for directories, 0600 for files). On Windows the data directory
//! lives under the service account's profile or `%ProgramData%`, whose ACLs the
//! installer sets (see `service/windows.md`); nothing is changed here.

use std::path::Path;

/// Makes new files private and tightens the data directory's existing ones.
pub fn secure_data_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        for entry in walk(dir, 2) {
            let mode = if entry.is_dir() { 0o700 } else { 0o600 };
            std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(mode))?;
        }
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// The entries below `dir`, `depth` levels deep (the data directory is shallow).
#[cfg(unix)]
fn walk(dir: &Path, depth: usize) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else { return out };
    for e in rd.flatten() {
        let p = e.path();
        if e.file_type().is_ok_and(|t| t.is_symlink()) {
            continue;
        }
        if p.is_dir() && depth > 1 {
            out.extend(walk(&p, depth - 1));
        }
        out.push(p);
    }
    out
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn existing_files_become_private() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("queue.sqlite");
        std::fs::write(&f, b"x").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::create_dir(dir.path().join("logs")).unwrap();
        secure_data_dir(dir.path()).unwrap();
        assert_eq!(std::fs::metadata(&f).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::metadata(dir.path().join("logs")).unwrap().permissions().mode() & 0o777, 0o700);
        assert_eq!(std::fs::metadata(dir.path()).unwrap().permissions().mode() & 0o777, 0o700);
    }
}
