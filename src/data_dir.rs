//! The data dir holds the store (contacts' phone numbers and addresses, alert text, who
//! acked what) and the key that signs ack links and web sessions: it is tocsin's alone.
//! Under systemd the unit's `StateDirectoryMode=0700` and `UMask=0077` make it so; a bare
//! run, a container or a test would otherwise create it with the umask (0755 and 0644 on
//! most machines). So the dir is created 0700 and every file tocsin keeps in it 0600,
//! whatever the umask, and what an earlier tocsin left open to others is tightened (with
//! a warning saying what changed): refusing to start would turn an upgrade into an
//! outage, and nobody means the store to be readable by every user.
//!
//! Files in the dir are never followed through a symbolic link: a link planted there
//! could make tocsin read a key of someone else's or write where it should not.

use std::fs::{self, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The data dir's mode: tocsin's user only.
pub const DIR_MODE: u32 = 0o700;
/// Every file's mode in it.
pub const FILE_MODE: u32 = 0o600;

/// Why the data dir or a file in it cannot be made private.
#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    #[error(
        "cannot create the data dir {path}: {source}. Create it as the user tocsin runs as (`mkdir -m 700 {path}`), or point data_dir elsewhere"
    )]
    Create {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("the data dir {path} is not a directory: point data_dir at a directory")]
    NotADir { path: String },
    #[error(
        "{path} can be read or written by other users (mode {mode:04o}) and tocsin cannot change that: {source}. Run `chmod {want:o} {path}` as its owner, or `chown` it to the user tocsin runs as"
    )]
    Tighten {
        path: String,
        mode: u32,
        want: u32,
        #[source]
        source: io::Error,
    },
    #[error(
        "{path} is a symbolic link: tocsin keeps its data in plain files of its own. Replace the link with the file it points to"
    )]
    Symlink { path: String },
    #[error("cannot check or create {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> DataDirError + '_ {
    move |source| DataDirError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The data dir, made private ([`DataDir::prepare`]).
#[derive(Debug, Clone)]
pub struct DataDir {
    path: PathBuf,
}

impl DataDir {
    /// Creates `path` (and its missing parents) with mode 0700, or makes an existing dir
    /// 0700 when group or others could get in. The dir itself may be a symbolic link (a
    /// state dir moved to another disk).
    pub fn prepare(path: &Path) -> Result<DataDir, DataDirError> {
        match fs::metadata(path) {
            Ok(meta) if !meta.is_dir() => {
                return Err(DataDirError::NotADir {
                    path: path.display().to_string(),
                });
            }
            Ok(meta) => tighten(path, "the data dir", meta.mode(), DIR_MODE)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(DIR_MODE)
                    .create(path)
                    .map_err(|source| DataDirError::Create {
                        path: path.display().to_string(),
                        source,
                    })?;
            }
            Err(e) => return Err(io_err(path)(e)),
        }
        Ok(DataDir {
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Makes the file `name` private: an existing one is made 0600 when others could
    /// read or write it, a missing one is created empty with mode 0600 when `create`
    /// (SQLite takes an empty file for an empty database). A symbolic link is refused.
    pub fn private_file(&self, name: &str, create: bool) -> Result<PathBuf, DataDirError> {
        let path = self.path.join(name);
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => Err(DataDirError::Symlink {
                path: path.display().to_string(),
            }),
            Ok(meta) => {
                tighten(&path, name, meta.mode(), FILE_MODE)?;
                Ok(path)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
                match self.create_file(name) {
                    Ok(_) => Ok(path),
                    // Made meanwhile by another opener: it checks its own.
                    Err(DataDirError::Io { source, .. })
                        if source.kind() == io::ErrorKind::AlreadyExists =>
                    {
                        self.private_file(name, false)
                    }
                    Err(e) => Err(e),
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(path),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    /// Creates the file `name`, which must not exist (a link there is not followed),
    /// with mode 0600 whatever the umask, open for writing.
    pub fn create_file(&self, name: &str) -> Result<fs::File, DataDirError> {
        let path = self.path.join(name);
        let f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(FILE_MODE)
            .open(&path)
            .map_err(io_err(&path))?;
        // The umask may have taken bits off `mode`; this sets them exactly.
        f.set_permissions(Permissions::from_mode(FILE_MODE))
            .map_err(io_err(&path))?;
        Ok(f)
    }

    /// The uid tocsin runs as: the owner of a file it has just created here (std asks
    /// the OS for it only through unsafe code).
    pub fn our_uid(&self) -> Result<u32, DataDirError> {
        let name = format!(".uid-probe.{}", std::process::id());
        let probe = self.path.join(&name);
        // Left by a process of the same pid that died here: ours to remove.
        let _ = fs::remove_file(&probe);
        let f = self.create_file(&name)?;
        let uid = f.metadata().map_err(io_err(&probe))?.uid();
        fs::remove_file(&probe).map_err(io_err(&probe))?;
        Ok(uid)
    }

    /// Makes the dir's entries durable: a file renamed into it is there after a power
    /// loss.
    pub fn sync(&self) -> Result<(), DataDirError> {
        fs::File::open(&self.path)
            .and_then(|d| d.sync_all())
            .map_err(io_err(&self.path))
    }
}

/// Takes the group and other bits off `path`'s mode when it has any (`want` is the mode
/// it should have: owner bits only), saying so.
fn tighten(path: &Path, what: &str, mode: u32, want: u32) -> Result<(), DataDirError> {
    let mode = mode & 0o7777;
    if mode & 0o077 == 0 {
        return Ok(());
    }
    let private = mode & want;
    fs::set_permissions(path, Permissions::from_mode(private)).map_err(|source| {
        DataDirError::Tighten {
            path: path.display().to_string(),
            mode,
            want,
            source,
        }
    })?;
    tracing::warn!(
        path = %path.display(),
        was = format!("{mode:04o}"),
        now = format!("{private:04o}"),
        "{what} could be read by other users (it holds contacts' numbers and addresses, or the ack link key); made it private"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        fs::symlink_metadata(p).unwrap().mode() & 0o7777
    }

    #[test]
    fn a_new_data_dir_is_private() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("a/tocsin-data");
        let dir = DataDir::prepare(&path).unwrap();
        assert_eq!(mode(dir.path()), 0o700);
        let f = dir.private_file("tocsin.db", true).unwrap();
        assert_eq!(mode(&f), 0o600);
        assert_eq!(fs::metadata(&f).unwrap().len(), 0);
    }

    #[test]
    fn a_data_dir_and_files_left_open_to_others_are_tightened() {
        let tmp = tempfile::tempdir().unwrap();
        // What mkdir and a file create give under umask 0022.
        fs::set_permissions(tmp.path(), Permissions::from_mode(0o755)).unwrap();
        let db = tmp.path().join("tocsin.db");
        fs::write(&db, b"").unwrap();
        fs::set_permissions(&db, Permissions::from_mode(0o644)).unwrap();
        let dir = DataDir::prepare(tmp.path()).unwrap();
        assert_eq!(mode(tmp.path()), 0o700);
        dir.private_file("tocsin.db", false).unwrap();
        assert_eq!(mode(&db), 0o600);
        // A missing file is not made unless asked for.
        dir.private_file("tocsin.db-wal", false).unwrap();
        assert!(!tmp.path().join("tocsin.db-wal").exists());
    }

    #[test]
    fn a_file_that_is_a_link_is_refused_and_its_target_left_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let elsewhere = tmp.path().join("passwd");
        fs::write(&elsewhere, b"root:x:0:0").unwrap();
        fs::set_permissions(&elsewhere, Permissions::from_mode(0o644)).unwrap();
        let data = tmp.path().join("data");
        let dir = DataDir::prepare(&data).unwrap();
        std::os::unix::fs::symlink(&elsewhere, data.join("tocsin.db")).unwrap();
        let e = dir.private_file("tocsin.db", true).unwrap_err();
        assert!(matches!(e, DataDirError::Symlink { .. }), "{e}");
        assert!(e.to_string().contains("Replace the link"), "{e}");
        assert_eq!(mode(&elsewhere), 0o644, "not chmodded through the link");
    }

    #[test]
    fn the_uid_is_the_owner_of_what_tocsin_creates() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::prepare(tmp.path()).unwrap();
        let uid = dir.our_uid().unwrap();
        assert_eq!(uid, fs::metadata(tmp.path()).unwrap().uid());
        assert_eq!(
            fs::read_dir(tmp.path()).unwrap().count(),
            0,
            "the probe is removed"
        );
    }
}
