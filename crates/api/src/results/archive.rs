//! Result archives: a tar archive of a task's output tree, and its checks.
//!
//! A result archive is a plain (uncompressed) tar archive of the output tree (`/iexec_out`):
//! **regular files and directories only**, with relative, clean, UTF-8 paths. A leading `./`
//! is accepted (and dropped), as `tar -C out .` writes it; a symbolic or hard link, a device,
//! a fifo, a sparse file, an absolute path, a `..` or `.` component, a path twice, or a file
//! under a file is refused. GNU long names and pax headers are understood.
//!
//! [`inspect_archive`] checks an archive held in memory within [`ArchiveLimits`] (total
//! content size, number of entries, path length) and computes its result digest,
//! [`poco_primitives::result::result_digest`] over its files, which is the digest the worker
//! computed over its output directory and committed on-chain. File contents are not copied:
//! the digest hashes them where they lie in the archive.
//!
//! [`pack_dir`] and [`pack_files`] build a deterministic archive (sorted entries, zero
//! timestamps and owners, modes 0644 and 0755) for the worker; [`unpack_to_dir`] writes a
//! checked archive into a fresh directory for the beneficiary.

use std::{
    collections::{HashMap, hash_map::Entry as MapEntry},
    fs,
    io::{self, Read},
    path::{Path, PathBuf},
};

use alloy::primitives::B256;
use poco_primitives::result::{FAILURE_FILE, FailureRecord};
use tar::{Archive, Builder, EntryType, Header};

use super::error::{Error, Result};

/// What an archive may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchiveLimits {
    /// The most bytes of file content, all files together.
    pub max_content_bytes: u64,
    /// The most entries (files and directories).
    pub max_entries: usize,
    /// The longest path, in bytes.
    pub max_path_bytes: usize,
}

impl Default for ArchiveLimits {
    fn default() -> Self {
        Self { max_content_bytes: 64 * 1024 * 1024, max_entries: 10_000, max_path_bytes: 1_024 }
    }
}

/// A checked archive: its digest and its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveSummary {
    /// The result digest of its files.
    pub digest: B256,
    /// Its files, `(path, size)`, sorted by path bytes.
    pub files: Vec<(String, u64)>,
    /// Its directories (explicit entries), sorted.
    pub directories: Vec<String>,
    /// The total size of its files' content.
    pub content_bytes: u64,
    /// The failure record at its root ([`FAILURE_FILE`]), when it holds one that parses.
    pub failure: Option<FailureRecord>,
}

/// Checks `archive` within `limits` and computes its result digest.
pub fn inspect_archive(archive: &[u8], limits: &ArchiveLimits) -> Result<ArchiveSummary> {
    inspect(archive, limits).map(|(summary, _)| summary)
}

/// The summary of a checked archive, and where its files lie in it.
fn inspect(archive: &[u8], limits: &ArchiveLimits) -> Result<(ArchiveSummary, Vec<FileEntry>)> {
    let (files, mut directories) = read_entries(archive, limits)?;
    let digest = poco_primitives::result_digest(
        files.iter().map(|file| (file.path.as_str(), file.content(archive))),
    )
    .map_err(|error| invalid(error.to_string()))?;
    let mut listed: Vec<(String, u64)> =
        files.iter().map(|file| (file.path.clone(), file.size)).collect();
    listed.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let content_bytes = listed.iter().map(|(_, size)| size).sum();
    directories.sort();
    let failure = files
        .iter()
        .find(|file| file.path == FAILURE_FILE)
        .and_then(|file| FailureRecord::from_json(file.content(archive)).ok());
    Ok((ArchiveSummary { digest, files: listed, directories, content_bytes, failure }, files))
}

/// A regular file of an archive: where its content lies in the archive bytes.
struct FileEntry {
    path: String,
    offset: usize,
    size: u64,
}

impl FileEntry {
    fn content<'a>(&self, archive: &'a [u8]) -> &'a [u8] {
        &archive[self.offset..self.offset + self.size as usize]
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    File,
    Directory,
}

fn read_entries(archive: &[u8], limits: &ArchiveLimits) -> Result<(Vec<FileEntry>, Vec<String>)> {
    let mut reader = Archive::new(archive);
    let entries = reader.entries().map_err(|e| invalid(format!("not a tar archive: {e}")))?;
    let mut seen: HashMap<String, Kind> = HashMap::new();
    let mut files = Vec::new();
    let mut directories = Vec::new();
    let mut content_bytes = 0u64;
    let mut buffer = vec![0u8; 64 * 1024];
    for entry in entries {
        let mut entry = entry.map_err(|e| invalid(format!("unreadable tar entry: {e}")))?;
        let raw_path = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw_path).into_owned();
        let kind = match entry.header().entry_type() {
            EntryType::Regular => Kind::File,
            EntryType::Directory => Kind::Directory,
            EntryType::Symlink => return Err(invalid(format!("{shown:?} is a symbolic link"))),
            EntryType::Link => return Err(invalid(format!("{shown:?} is a hard link"))),
            EntryType::GNUSparse => return Err(invalid(format!("{shown:?} is a sparse file"))),
            other => {
                return Err(invalid(format!(
                    "{shown:?} is of tar type {:?}: only regular files and directories are \
                     allowed",
                    char::from(other.as_byte())
                )));
            }
        };
        if seen.len() >= limits.max_entries {
            return Err(Error::TooManyFiles { limit: limits.max_entries });
        }
        if raw_path.len() > limits.max_path_bytes {
            return Err(invalid(format!(
                "a path is {} bytes long, the limit is {}",
                raw_path.len(),
                limits.max_path_bytes
            )));
        }
        let Some(path) = clean_path(&raw_path, kind)? else {
            continue; // the root directory itself ("." or "./")
        };
        match seen.entry(path.clone()) {
            MapEntry::Occupied(_) => {
                return Err(invalid(format!("{path:?} appears twice")));
            }
            MapEntry::Vacant(slot) => {
                slot.insert(kind);
            }
        }
        match kind {
            Kind::Directory => {
                if entry.size() != 0 {
                    return Err(invalid(format!("directory {path:?} has content")));
                }
                directories.push(path);
            }
            Kind::File => {
                let size = entry.size();
                content_bytes = content_bytes.saturating_add(size);
                if content_bytes > limits.max_content_bytes {
                    return Err(Error::TooLarge {
                        what: "the archive's content",
                        size: content_bytes,
                        limit: limits.max_content_bytes,
                    });
                }
                let offset = entry.raw_file_position();
                let end = offset.checked_add(size).filter(|end| *end <= archive.len() as u64);
                let Some(end) = end else {
                    return Err(invalid(format!("{path:?} is truncated")));
                };
                // The content must be exactly the bytes at its position: read it through the
                // tar reader and compare, so the digest never hashes anything else.
                let expected = &archive[offset as usize..end as usize];
                let mut at = 0usize;
                loop {
                    let count = entry
                        .read(&mut buffer)
                        .map_err(|e| invalid(format!("{path:?} is unreadable: {e}")))?;
                    if count == 0 {
                        break;
                    }
                    if expected.get(at..at + count) != Some(&buffer[..count]) {
                        return Err(invalid(format!("{path:?} is not stored contiguously")));
                    }
                    at += count;
                }
                if at != expected.len() {
                    return Err(invalid(format!("{path:?} is truncated")));
                }
                files.push(FileEntry { path, offset: offset as usize, size });
            }
        }
    }
    // A directory entry under a file, or a file under a file.
    for (path, _) in seen.iter() {
        let mut parents = path.match_indices('/').map(|(end, _)| &path[..end]);
        if parents.any(|parent| seen.get(parent) == Some(&Kind::File)) {
            return Err(invalid(format!("{path:?} is under a file")));
        }
    }
    Ok((files, directories))
}

/// The clean relative path of an entry, or `None` for the root directory.
fn clean_path(raw: &[u8], kind: Kind) -> Result<Option<String>> {
    let Ok(path) = std::str::from_utf8(raw) else {
        return Err(invalid(format!("{:?} is not UTF-8", String::from_utf8_lossy(raw))));
    };
    if path.contains('\0') {
        return Err(invalid(format!("{path:?} contains a NUL byte")));
    }
    if path.starts_with('/') {
        return Err(invalid(format!(
            "{path:?} is absolute: paths are relative to the output root"
        )));
    }
    let mut relative = path.strip_prefix("./").unwrap_or(path);
    if kind == Kind::Directory {
        if relative.is_empty() || relative == "." {
            return Ok(None);
        }
        relative = relative.strip_suffix('/').unwrap_or(relative);
    }
    if relative.is_empty() {
        return Err(invalid(format!("{path:?} is an empty path")));
    }
    for component in relative.split('/') {
        match component {
            ".." => return Err(invalid(format!("{path:?} has a '..' component"))),
            "." | "" => {
                return Err(invalid(format!("{path:?} has an empty or '.' component")));
            }
            _ => {}
        }
    }
    Ok(Some(relative.to_owned()))
}

fn invalid(reason: String) -> Error {
    Error::InvalidArchive { reason }
}

/// A deterministic archive of the output tree under `dir`: its directories then its files,
/// sorted by path, with zero timestamps and owners. Refuses symbolic links, special files and
/// non-UTF-8 names, as the worker's digest does, so the archive's digest is the directory's.
pub fn pack_dir(dir: &Path) -> Result<Vec<u8>> {
    let mut directories = Vec::new();
    let mut files = Vec::new();
    walk(dir, "", &mut directories, &mut files)?;
    directories.sort();
    files.sort_by(|a: &(String, PathBuf), b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut builder = Builder::new(Vec::new());
    for directory in &directories {
        append_directory(&mut builder, directory)?;
    }
    for (relative, path) in &files {
        let io_error = |source| Error::Io { path: path.clone(), source };
        let file = fs::File::open(path).map_err(io_error)?;
        let size = file.metadata().map_err(io_error)?.len();
        // Take exactly `size` bytes, so a file growing meanwhile cannot break the entry.
        let mut reader = file.take(size);
        let mut header = file_header(size);
        builder.append_data(&mut header, relative, &mut reader).map_err(io_error)?;
    }
    finish(builder)
}

/// A deterministic archive of in-memory files `(relative path, content)`, sorted by path.
/// Directories are implied by the paths.
pub fn pack_files<P, C>(files: impl IntoIterator<Item = (P, C)>) -> Result<Vec<u8>>
where
    P: AsRef<str>,
    C: AsRef<[u8]>,
{
    let mut files: Vec<(P, C)> = files.into_iter().collect();
    files.sort_by(|a, b| a.0.as_ref().as_bytes().cmp(b.0.as_ref().as_bytes()));
    let mut builder = Builder::new(Vec::new());
    for (path, content) in &files {
        let (path, content) = (path.as_ref(), content.as_ref());
        if clean_path(path.as_bytes(), Kind::File)?.as_deref() != Some(path) {
            return Err(invalid(format!("{path:?} is not a clean relative path")));
        }
        let mut header = file_header(content.len() as u64);
        builder.append_data(&mut header, path, content).map_err(|e| build_error(path, e))?;
    }
    finish(builder)
}

/// Checks `archive` and writes its tree into `dir`, which must not exist or be empty. Returns
/// the archive's summary (its digest included).
pub fn unpack_to_dir(archive: &[u8], dir: &Path, limits: &ArchiveLimits) -> Result<ArchiveSummary> {
    let (summary, files) = inspect(archive, limits)?;
    let io_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { path, source }
    };
    match fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(Error::Io {
                    path: dir.to_path_buf(),
                    source: io::Error::new(io::ErrorKind::AlreadyExists, "directory not empty"),
                });
            }
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            fs::create_dir_all(dir).map_err(io_error(dir))?;
        }
        Err(error) => return Err(Error::Io { path: dir.to_path_buf(), source: error }),
    }
    // Every directory is created here, so no path component can be a link planted beforehand.
    let mut created = std::collections::HashSet::new();
    let mut create = |relative: &str| -> Result<()> {
        let mut at = String::new();
        for component in relative.split('/') {
            if !at.is_empty() {
                at.push('/');
            }
            at.push_str(component);
            if created.insert(at.clone()) {
                let path = dir.join(&at);
                fs::create_dir(&path).map_err(io_error(&path))?;
            }
        }
        Ok(())
    };
    for directory in &summary.directories {
        create(directory)?;
    }
    for file in &files {
        if let Some((parent, _)) = file.path.rsplit_once('/') {
            create(parent)?;
        }
        let path = dir.join(&file.path);
        let content = file.content(archive);
        let mut out = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(io_error(&path))?;
        io::Write::write_all(&mut out, content).map_err(io_error(&path))?;
    }
    Ok(summary)
}

fn walk(
    dir: &Path,
    prefix: &str,
    directories: &mut Vec<String>,
    files: &mut Vec<(String, PathBuf)>,
) -> Result<()> {
    let io_error = |source| Error::Io { path: dir.to_path_buf(), source };
    for entry in fs::read_dir(dir).map_err(io_error)? {
        let entry = entry.map_err(io_error)?;
        let path = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            return Err(invalid(format!("{} is not UTF-8", path.display())));
        };
        let relative = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
        // `DirEntry::file_type` does not follow symbolic links.
        let kind = entry.file_type().map_err(|source| Error::Io { path: path.clone(), source })?;
        if kind.is_symlink() {
            return Err(invalid(format!("{} is a symbolic link", path.display())));
        } else if kind.is_dir() {
            walk(&path, &relative, directories, files)?;
            directories.push(relative);
        } else if kind.is_file() {
            files.push((relative, path));
        } else {
            return Err(invalid(format!("{} is a special file", path.display())));
        }
    }
    Ok(())
}

fn file_header(size: u64) -> Header {
    let mut header = Header::new_gnu();
    header.set_entry_type(EntryType::Regular);
    header.set_size(size);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header
}

fn append_directory(builder: &mut Builder<Vec<u8>>, path: &str) -> Result<()> {
    let mut header = Header::new_gnu();
    header.set_entry_type(EntryType::Directory);
    header.set_size(0);
    header.set_mode(0o755);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    builder
        .append_data(&mut header, format!("{path}/"), io::empty())
        .map_err(|e| build_error(path, e))
}

fn finish(builder: Builder<Vec<u8>>) -> Result<Vec<u8>> {
    builder.into_inner().map_err(|e| build_error("", e))
}

fn build_error(path: &str, source: io::Error) -> Error {
    Error::Io { path: PathBuf::from(path), source }
}

/// Limits on one upload: what a store accepts, and what a worker's output must fit in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadLimits {
    /// The most bytes of a request body (the tar archive).
    pub max_body_bytes: u64,
    /// What the archive may hold.
    pub archive: ArchiveLimits,
}

impl Default for UploadLimits {
    fn default() -> Self {
        Self { max_body_bytes: 64 * 1024 * 1024, archive: ArchiveLimits::default() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use poco_primitives::result::result_digest_of_dir;

    fn limits() -> ArchiveLimits {
        ArchiveLimits::default()
    }

    /// An archive with raw entries, written without the builder's path checks.
    fn raw_archive(entries: &[(&str, EntryType, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (path, kind, content) in entries {
            let mut header = Header::new_old();
            let name = path.as_bytes();
            header.as_old_mut().name[..name.len()].copy_from_slice(name);
            header.set_entry_type(*kind);
            header.set_size(content.len() as u64);
            header.set_mode(0o644);
            if *kind == EntryType::Symlink {
                header.set_link_name("/etc/passwd").unwrap();
            }
            header.set_cksum();
            out.extend_from_slice(header.as_bytes());
            out.extend_from_slice(content);
            out.resize(out.len().div_ceil(512) * 512, 0);
        }
        out.extend_from_slice(&[0; 1024]);
        out
    }

    fn reason(result: Result<ArchiveSummary>) -> String {
        match result {
            Err(Error::InvalidArchive { reason }) => reason,
            other => panic!("expected an invalid archive, got {other:?}"),
        }
    }

    #[test]
    fn digest_is_the_output_trees() {
        let files = [("result.txt", &b"42\n"[..]), ("sub/data.bin", &[0u8, 1, 255][..])];
        let archive = pack_files(files).unwrap();
        let summary = inspect_archive(&archive, &limits()).unwrap();
        assert_eq!(summary.digest, poco_primitives::result_digest(files).unwrap());
        assert_eq!(summary.files, vec![("result.txt".into(), 3), ("sub/data.bin".into(), 3)]);
        assert_eq!(summary.content_bytes, 6);
    }

    #[test]
    fn packing_a_directory_keeps_its_digest_and_is_deterministic() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path();
        fs::create_dir_all(dir.join("a/b")).unwrap();
        fs::create_dir_all(dir.join("empty")).unwrap();
        fs::write(dir.join("z.txt"), "zz").unwrap();
        fs::write(dir.join("a/b/c"), "").unwrap();
        let long = "x".repeat(150); // needs a GNU long name
        fs::write(dir.join("a").join(&long), "long").unwrap();
        let archive = pack_dir(dir).unwrap();
        assert_eq!(archive, pack_dir(dir).unwrap());
        let summary = inspect_archive(&archive, &limits()).unwrap();
        assert_eq!(summary.digest, result_digest_of_dir(dir).unwrap());
        assert_eq!(summary.directories, vec!["a", "a/b", "empty"]);
        assert!(summary.files.iter().any(|(path, _)| *path == format!("a/{long}")));

        let out = root.path().join("unpacked");
        let unpacked = unpack_to_dir(&archive, &out, &limits()).unwrap();
        assert_eq!(unpacked, summary);
        assert_eq!(result_digest_of_dir(&out).unwrap(), summary.digest);
        assert!(out.join("empty").is_dir());
        assert_eq!(fs::read(out.join("z.txt")).unwrap(), b"zz");
        // Never into a directory that holds something.
        assert!(matches!(unpack_to_dir(&archive, &out, &limits()), Err(Error::Io { .. })));
    }

    #[cfg(unix)]
    #[test]
    fn packing_refuses_links() {
        let root = tempfile::tempdir().unwrap();
        fs::write(root.path().join("target"), "x").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.path().join("link")).unwrap();
        assert!(matches!(pack_dir(root.path()), Err(Error::InvalidArchive { .. })));
    }

    #[test]
    fn links_and_special_files_are_refused() {
        let archive =
            raw_archive(&[("ok", EntryType::Regular, b"1"), ("l", EntryType::Symlink, b"")]);
        assert!(reason(inspect_archive(&archive, &limits())).contains("symbolic link"));
        let archive = raw_archive(&[("h", EntryType::Link, b"")]);
        assert!(reason(inspect_archive(&archive, &limits())).contains("hard link"));
        let archive = raw_archive(&[("f", EntryType::Fifo, b"")]);
        assert!(reason(inspect_archive(&archive, &limits())).contains("only regular files"));
        let archive = raw_archive(&[("d", EntryType::Char, b"")]);
        assert!(reason(inspect_archive(&archive, &limits())).contains("only regular files"));
    }

    #[test]
    fn escaping_and_unclean_paths_are_refused() {
        for (path, expected) in [
            ("../escape", "'..'"),
            ("a/../../b", "'..'"),
            ("/etc/passwd", "absolute"),
            ("a//b", "empty or '.'"),
            ("a/./b", "empty or '.'"),
        ] {
            let archive = raw_archive(&[(path, EntryType::Regular, b"x")]);
            let reason = reason(inspect_archive(&archive, &limits()));
            assert!(reason.contains(expected), "{path}: {reason}");
        }
        // "./" prefixes, as `tar -C out .` writes them, are fine.
        let archive = raw_archive(&[
            ("./", EntryType::Directory, b""),
            ("./a/", EntryType::Directory, b""),
            ("./a/x", EntryType::Regular, b"1"),
        ]);
        let summary = inspect_archive(&archive, &limits()).unwrap();
        assert_eq!(summary.digest, poco_primitives::result_digest([("a/x", "1")]).unwrap());
    }

    #[test]
    fn duplicates_and_files_under_files_are_refused() {
        let archive =
            raw_archive(&[("a", EntryType::Regular, b"1"), ("./a", EntryType::Regular, b"2")]);
        assert!(reason(inspect_archive(&archive, &limits())).contains("twice"));
        let archive =
            raw_archive(&[("a", EntryType::Regular, b"1"), ("a/", EntryType::Directory, b"")]);
        assert!(reason(inspect_archive(&archive, &limits())).contains("twice"));
        let archive =
            raw_archive(&[("a", EntryType::Regular, b"1"), ("a/b", EntryType::Regular, b"2")]);
        assert!(reason(inspect_archive(&archive, &limits())).contains("under a file"));
    }

    #[test]
    fn limits_are_enforced() {
        let files: Vec<(String, Vec<u8>)> =
            (0..11).map(|i| (format!("f{i:02}"), vec![b'x'; 10])).collect();
        let archive = pack_files(files.iter().map(|(p, c)| (p.as_str(), c.as_slice()))).unwrap();
        let tight = ArchiveLimits { max_entries: 10, ..limits() };
        assert!(matches!(
            inspect_archive(&archive, &tight),
            Err(Error::TooManyFiles { limit: 10 })
        ));
        let small = ArchiveLimits { max_content_bytes: 105, ..limits() };
        assert!(matches!(
            inspect_archive(&archive, &small),
            Err(Error::TooLarge { limit: 105, .. })
        ));
        let short = ArchiveLimits { max_path_bytes: 2, ..limits() };
        assert!(reason(inspect_archive(&archive, &short)).contains("limit is 2"));
        assert!(inspect_archive(&archive, &limits()).is_ok());
    }

    #[test]
    fn garbage_and_truncation_are_refused() {
        assert!(matches!(
            inspect_archive(&[1u8; 700], &limits()),
            Err(Error::InvalidArchive { .. })
        ));
        let archive = pack_files([("a", vec![7u8; 2000])]).unwrap();
        assert!(matches!(
            inspect_archive(&archive[..1200], &limits()),
            Err(Error::InvalidArchive { .. })
        ));
        // An empty archive is an empty output tree.
        let empty: [(&str, &[u8]); 0] = [];
        let summary = inspect_archive(&pack_files(empty).unwrap(), &limits()).unwrap();
        assert_eq!(summary.digest, poco_primitives::result_digest(empty).unwrap());
    }

    #[test]
    fn pack_files_refuses_unclean_paths() {
        assert!(pack_files([("../x", "1")]).is_err());
        assert!(pack_files([("/x", "1")]).is_err());
    }
}
