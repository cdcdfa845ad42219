//! Files a service keeps to itself: its folders are 0700 and its files 0600.
//!
//! A service's folders hold keys, private result archives, secrets and databases. Other users
//! of the machine must not read them, so every folder a service creates is made for its owner
//! only, and a folder the operator names that other users can open is refused at start-up with
//! the command that fixes it (rather than silently changed: it may be shared on purpose, and then
//! it is the wrong place for these files).
//!
//! Libraries that write files of their own (SQLite's journals, the object store's archives, the
//! chain node the devnet starts) take their mode from the process's file-creation mask:
//! [`keep_new_files_private`] sets it for the whole process, which is what a service process
//! wants; [`private_sqlite_file`] covers SQLite for callers that keep the default mask.

use std::{
    fs, io,
    io::Write,
    path::{Path, PathBuf},
};

/// The mode of a folder a service creates: read, write and search for its owner only.
pub const PRIVATE_DIR_MODE: u32 = 0o700;
/// The mode of a file a service creates: read and write for its owner only.
pub const PRIVATE_FILE_MODE: u32 = 0o600;

/// Creates `dir` and its missing parents (each new one 0700), then checks that `dir` itself is
/// not open to other users; an existing folder is never widened nor narrowed.
///
/// The error for a shared folder says which mode it has and how to make it private.
pub fn private_dir(dir: &Path) -> io::Result<()> {
    create_private_dirs(dir)?;
    check_private_dir(dir)
}

/// Creates `dir` and its missing parents, each new one 0700; existing ones are left as they are.
pub fn create_private_dirs(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, PRIVATE_DIR_MODE);
    builder.create(dir)
}

/// Checks that `dir` is a folder that neither its group nor other users can open.
pub fn check_private_dir(dir: &Path) -> io::Result<()> {
    let metadata = fs::metadata(dir)?;
    if !metadata.is_dir() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a folder"));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "other users of this machine can open this folder (mode {mode:o}); make it \
                     private with `chmod 700 {}`, or choose another folder",
                    shell_quote(dir)
                ),
            ));
        }
    }
    Ok(())
}

/// Writes `bytes` to `path` atomically (a 0600 file beside it, then renamed over it).
pub fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let partial = partial_path(path);
    let written = create_private(&partial).and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_all()
    });
    if let Err(error) = written.and_then(|()| fs::rename(&partial, path)) {
        let _ = fs::remove_file(&partial);
        return Err(error);
    }
    Ok(())
}

/// Creates (or truncates) `path` as a 0600 file, for writing.
pub fn create_private(path: &Path) -> io::Result<fs::File> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, PRIVATE_FILE_MODE);
    options.open(path)
}

/// Creates the SQLite database file of `url` (`sqlite://path` or `sqlite:path`, with or without
/// query) as an empty 0600 file when it does not exist yet (and its folder, 0700, when it does
/// not exist either; an existing folder is the operator's choice): SQLite gives
/// its journal and write-ahead log the mode of the database file. Other URLs are left alone.
/// The error names the path it is about.
pub fn private_sqlite_file(url: &str) -> io::Result<()> {
    sqlite_file(url)
}

fn sqlite_file(url: &str) -> io::Result<()> {
    let Some(rest) = url.strip_prefix("sqlite:") else { return Ok(()) };
    let path = rest.trim_start_matches("//");
    let path = path.split_once('?').map_or(path, |(path, _)| path);
    if path.is_empty() || path == ":memory:" {
        return Ok(());
    }
    let path = PathBuf::from(path);
    let with_path = |at: &Path, error: io::Error| {
        io::Error::new(error.kind(), format!("{}: {error}", at.display()))
    };
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        create_private_dirs(dir).map_err(|e| with_path(dir, e))?;
    }
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, PRIVATE_FILE_MODE);
    match options.open(&path) {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(with_path(&path, error)),
    }
}

/// Makes every file and folder this process (and the processes it starts) creates from now on
/// private to its owner, whatever library creates it: sets the file-creation mask to 077.
/// For service processes; it changes the whole process.
pub fn keep_new_files_private() {
    #[cfg(unix)]
    // SAFETY: umask only swaps the process's creation mask; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
}

fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".partial");
    path.with_file_name(name)
}

fn shell_quote(path: &Path) -> String {
    let text = path.display().to_string();
    if text.chars().all(|c| c.is_ascii_alphanumeric() || "/._-~".contains(c)) {
        text
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn new_folders_are_private_and_shared_ones_are_refused_with_the_fix() {
        let root = tempfile::tempdir().unwrap();
        let nested = root.path().join("a/b/c");
        private_dir(&nested).unwrap();
        for dir in ["a", "a/b", "a/b/c"] {
            assert_eq!(mode(&root.path().join(dir)), 0o700, "{dir}");
        }
        let shared = root.path().join("shared dir");
        fs::create_dir(&shared).unwrap();
        fs::set_permissions(&shared, fs::Permissions::from_mode(0o755)).unwrap();
        let error = private_dir(&shared).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::PermissionDenied);
        let message = error.to_string();
        assert!(message.contains("mode 755"), "{message}");
        assert!(message.contains("chmod 700 '"), "{message}");
        assert_eq!(mode(&shared), 0o755, "an existing folder is not changed");
        fs::set_permissions(&shared, fs::Permissions::from_mode(0o750)).unwrap();
        assert!(check_private_dir(&shared).is_err(), "group access is refused too");
        fs::set_permissions(&shared, fs::Permissions::from_mode(0o700)).unwrap();
        check_private_dir(&shared).unwrap();
        let file = root.path().join("file");
        fs::write(&file, "x").unwrap();
        assert_eq!(check_private_dir(&file).unwrap_err().kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn private_files_replace_atomically_with_mode_0600() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("state.json");
        fs::write(&path, "old").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        write_private(&path, b"new").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        assert_eq!(mode(&path), 0o600);
        assert_eq!(fs::read_dir(root.path()).unwrap().count(), 1, "no partial file left");
    }

    #[test]
    fn sqlite_files_are_created_private_and_other_urls_ignored() {
        let root = tempfile::tempdir().unwrap();
        let db = root.path().join("data/db.sqlite");
        private_sqlite_file(&format!("sqlite://{}?mode=rwc", db.display())).unwrap();
        assert_eq!(mode(&db), 0o600);
        assert_eq!(mode(&root.path().join("data")), 0o700);
        fs::write(&db, "kept").unwrap();
        private_sqlite_file(&format!("sqlite:{}", db.display())).unwrap();
        assert_eq!(fs::read(&db).unwrap(), b"kept", "an existing database is left alone");
        private_sqlite_file("postgres://postgres@127.0.0.1/db").unwrap();
        private_sqlite_file("sqlite::memory:").unwrap();
    }
}
