//! Whether the store can write. A write that fails because the disk is full or the data
//! folder is read-only (or for any other reason) is kept as the store's [`WriteFault`] until
//! a later write succeeds; the health monitor turns it into the technicians' `storage_failed`
//! alarm. The meeting does not depend on it: media, floor and mute live in memory.

use super::StoreError;
use serde::Serialize;
use std::fmt;

/// What stops the store from writing, in terms a technician acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Problem {
    DiskFull,
    ReadOnly,
    Other,
}

/// The last failed write: where, what kind of problem, and the error as reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct WriteFault {
    pub(crate) path: String,
    pub(crate) problem: Problem,
    pub(crate) error: String,
}

impl WriteFault {
    pub(crate) fn of(path: &str, e: &StoreError) -> WriteFault {
        WriteFault { path: path.to_string(), problem: problem_of(e), error: e.to_string() }
    }

    /// A fault of the storage itself (disk, folder, file), or `None` for an error of what
    /// was written (a constraint, a bug): that says nothing about whether the disk works.
    pub(crate) fn of_storage(path: &str, e: &StoreError) -> Option<WriteFault> {
        use rusqlite::ErrorCode;
        let storage = match e {
            StoreError::Sql(rusqlite::Error::SqliteFailure(f, _)) => matches!(
                f.code,
                ErrorCode::DiskFull
                    | ErrorCode::ReadOnly
                    | ErrorCode::SystemIoFailure
                    | ErrorCode::CannotOpen
                    | ErrorCode::DatabaseCorrupt
                    | ErrorCode::NotADatabase
                    | ErrorCode::FileLockingProtocolFailed
            ),
            StoreError::Sql(_) => false,
            StoreError::Open { .. } | StoreError::Io { .. } => true,
        };
        storage.then(|| WriteFault::of(path, e))
    }

    /// The problem in words, without the path.
    pub(crate) fn problem_text(&self) -> String {
        match self.problem {
            Problem::DiskFull => "the disk is full".into(),
            Problem::ReadOnly => "the data folder is read-only".into(),
            Problem::Other => self.error.clone(),
        }
    }
}

impl fmt::Display for WriteFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot write {}: {}", self.path, self.problem_text())
    }
}

fn problem_of(e: &StoreError) -> Problem {
    use rusqlite::ErrorCode;
    match e {
        StoreError::Sql(rusqlite::Error::SqliteFailure(f, _)) => match f.code {
            ErrorCode::DiskFull => Problem::DiskFull,
            ErrorCode::ReadOnly => Problem::ReadOnly,
            _ => Problem::Other,
        },
        StoreError::Io { source, .. } => io_problem(source),
        _ => Problem::Other,
    }
}

/// ENOSPC / EDQUOT and EROFS / EACCES as a [`Problem`].
pub(crate) fn io_problem(e: &std::io::Error) -> Problem {
    match e.raw_os_error() {
        Some(libc::ENOSPC) | Some(libc::EDQUOT) => Problem::DiskFull,
        Some(libc::EROFS) | Some(libc::EACCES) | Some(libc::EPERM) => Problem::ReadOnly,
        _ => Problem::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite(code: i32) -> StoreError {
        StoreError::Sql(rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None))
    }

    #[test]
    fn a_full_disk_and_a_read_only_folder_are_named_with_the_path() {
        let full = WriteFault::of("/srv/diemcau/diemcau.sqlite3", &sqlite(rusqlite::ffi::SQLITE_FULL));
        assert_eq!(full.problem, Problem::DiskFull);
        assert_eq!(full.to_string(), "cannot write /srv/diemcau/diemcau.sqlite3: the disk is full");
        let ro = WriteFault::of("/srv/diemcau/diemcau.sqlite3", &sqlite(rusqlite::ffi::SQLITE_READONLY));
        assert_eq!(ro.problem, Problem::ReadOnly);
        let io = StoreError::Io { path: "/srv/diemcau".into(), source: std::io::Error::from_raw_os_error(libc::EROFS) };
        assert_eq!(WriteFault::of("/srv/diemcau", &io).problem, Problem::ReadOnly);
        let other = WriteFault::of("/x", &sqlite(rusqlite::ffi::SQLITE_CORRUPT));
        assert_eq!(other.problem, Problem::Other);
        assert!(other.to_string().starts_with("cannot write /x: database error"), "{other}");
        assert!(WriteFault::of_storage("/x", &sqlite(rusqlite::ffi::SQLITE_CONSTRAINT)).is_none(), "a refused row is not a disk fault");
        assert!(WriteFault::of_storage("/x", &sqlite(rusqlite::ffi::SQLITE_FULL)).is_some());
    }
}
