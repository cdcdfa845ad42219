//! The output quota, enforced while the app runs.
//!
//! The WASI preview-1 calls that grow the output directory are shadowed in the linker by
//! wrappers that first work out what the call would add (bytes, entries, path length and depth),
//! refuse it by stopping the app with a [`QuotaExceeded`] trap when that goes past the quota,
//! and otherwise hand the call to wasmtime-wasi's own implementation, then true the count up
//! with what really happened. Nothing goes past the quota on the disk: the check comes before
//! the bytes are written.
//!
//! What is counted is the apparent size of regular files (the position a write ends at, not the
//! blocks it takes, so a sparse file made by seeking far counts for its full length), and the
//! entries created. Removing a file or a directory gives its share back. A walk of the directory
//! after the run ([`measure`]) checks the same quota again, exactly, whatever a rename moved.

use std::fs;
use std::io;
use std::path::Path;

use tracing::warn;
use wasmtime::{AsContextMut, Caller, Extern, Linker};
use wasmtime_wasi::p1::types::{self, Filetype};
use wasmtime_wasi::p1::wasi_snapshot_preview1::{self as p1, WasiSnapshotPreview1};
use wiggle::{GuestMemory, GuestPtr};

use super::Sandbox;
use crate::exec::{OutputQuota, QuotaExceeded, QuotaKind};

const MODULE: &str = "wasi_snapshot_preview1";
/// `oflags::creat` of WASI preview 1.
const OFLAGS_CREAT: i32 = 1;
/// `oflags::trunc` of WASI preview 1.
const OFLAGS_TRUNC: i32 = 8;
/// `fdflags::append` of WASI preview 1.
const FDFLAGS_APPEND: u16 = 1;
/// `errno::notsup` of WASI preview 1.
const ERRNO_NOTSUP: i32 = 58;

/// What the app has in its output directory, and the quota it must stay within.
pub(super) struct OutputMeter {
    quota: OutputQuota,
    bytes: u64,
    entries: u64,
    exceeded: Option<QuotaExceeded>,
}

impl OutputMeter {
    /// A meter starting from what the directory already holds.
    pub(super) fn new(quota: OutputQuota, start: Usage) -> Self {
        Self { quota, bytes: start.bytes, entries: start.entries, exceeded: None }
    }

    /// The quota the app went past, if it did.
    pub(super) fn exceeded(&self) -> Option<QuotaExceeded> {
        self.exceeded
    }

    fn refuse(&mut self, kind: QuotaKind, limit: u64) -> wasmtime::Error {
        let exceeded = QuotaExceeded { kind, limit };
        warn!(target: "poco_worker::exec", %exceeded, "the app is stopped at its output quota");
        self.exceeded = Some(exceeded);
        wasmtime::Error::new(exceeded)
    }

    /// Adds `bytes` of content, or stops the app if that goes past the quota.
    fn charge_bytes(&mut self, bytes: u64) -> wasmtime::Result<()> {
        let total = self.bytes.saturating_add(bytes);
        if total > self.quota.max_bytes {
            return Err(self.refuse(QuotaKind::Bytes, self.quota.max_bytes));
        }
        self.bytes = total;
        Ok(())
    }

    fn refund_bytes(&mut self, bytes: u64) {
        self.bytes = self.bytes.saturating_sub(bytes);
    }

    /// Checks the length and depth of a path the app names to create an entry. The path is
    /// relative to a directory the app opened, so it is at most the entry's full path: a path
    /// already too long is refused here, and the walk after the run checks the full paths.
    fn check_path(&mut self, path: &str) -> wasmtime::Result<()> {
        let (bytes, depth) = path_size(path);
        if bytes > self.quota.max_path_bytes {
            return Err(self.refuse(QuotaKind::PathBytes, self.quota.max_path_bytes as u64));
        }
        if depth > self.quota.max_depth {
            return Err(self.refuse(QuotaKind::Depth, self.quota.max_depth as u64));
        }
        Ok(())
    }

    /// Adds one entry, or stops the app if that goes past the quota.
    fn charge_entry(&mut self) -> wasmtime::Result<()> {
        if self.entries >= self.quota.max_entries {
            return Err(self.refuse(QuotaKind::Entries, self.quota.max_entries));
        }
        self.entries += 1;
        Ok(())
    }

    fn refund_entry(&mut self) {
        self.entries = self.entries.saturating_sub(1);
    }
}

/// The length in bytes of `path` once cleaned (no empty or `.` component), and its number of
/// components.
fn path_size(path: &str) -> (usize, usize) {
    let mut bytes = 0;
    let mut depth = 0;
    for component in path.split('/').filter(|c| !c.is_empty() && *c != ".") {
        bytes += component.len() + usize::from(depth > 0);
        depth += 1;
    }
    (bytes, depth)
}

/// What a directory holds, as the quota counts it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Usage {
    /// The apparent sizes of its regular files, added up.
    pub(super) bytes: u64,
    /// Its files and directories (and anything else), the root excluded.
    pub(super) entries: u64,
}

/// Walks `root` and measures it against `quota`: its usage, or the first quota it goes past.
/// The walk stops as soon as one is passed, so a huge tree costs no more than the quota.
pub(super) fn measure(
    root: &Path,
    quota: &OutputQuota,
) -> io::Result<Result<Usage, QuotaExceeded>> {
    let mut usage = Usage::default();
    let mut pending = vec![(root.to_path_buf(), String::new(), 0usize)];
    while let Some((dir, prefix, depth)) = pending.pop() {
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let relative = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
            usage.entries += 1;
            if usage.entries > quota.max_entries {
                return Ok(Err(QuotaExceeded {
                    kind: QuotaKind::Entries,
                    limit: quota.max_entries,
                }));
            }
            if relative.len() > quota.max_path_bytes {
                let limit = quota.max_path_bytes as u64;
                return Ok(Err(QuotaExceeded { kind: QuotaKind::PathBytes, limit }));
            }
            if depth + 1 > quota.max_depth {
                let limit = quota.max_depth as u64;
                return Ok(Err(QuotaExceeded { kind: QuotaKind::Depth, limit }));
            }
            let metadata = entry.path().symlink_metadata()?;
            if metadata.is_dir() {
                pending.push((entry.path(), relative, depth + 1));
            } else if metadata.is_file() {
                usage.bytes = usage.bytes.saturating_add(metadata.len());
                if usage.bytes > quota.max_bytes {
                    let limit = quota.max_bytes;
                    return Ok(Err(QuotaExceeded { kind: QuotaKind::Bytes, limit }));
                }
            }
        }
    }
    Ok(Ok(usage))
}

/// Removes everything under `root`, keeping `root`.
pub(super) fn clear(root: &Path) -> io::Result<()> {
    for entry in fs::read_dir(root)? {
        let path = entry?.path();
        if path.symlink_metadata()?.is_dir() {
            fs::remove_dir_all(&path)?;
        } else {
            fs::remove_file(&path)?;
        }
    }
    Ok(())
}

/// The guest's memory and the sandbox of a call, with the call's hostcall fuel handed to the
/// WASI context as wasmtime-wasi's own glue does.
pub(super) fn split<'a>(
    caller: &'a mut Caller<'_, Sandbox>,
) -> wasmtime::Result<(GuestMemory<'a>, &'a mut Sandbox)> {
    let fuel = caller.as_context_mut().hostcall_fuel();
    let Some(Extern::Memory(memory)) = caller.get_export("memory") else {
        return Err(wasmtime::Error::msg("missing required memory export"));
    };
    let (memory, sandbox) = memory.data_and_store_mut(caller);
    sandbox.wasi.set_hostcall_fuel(fuel);
    Ok((GuestMemory::Unshared(memory), sandbox))
}

fn fd(fd: i32) -> types::Fd {
    types::Fd::from(fd.cast_unsigned())
}

fn guest_str(memory: &GuestMemory<'_>, ptr: i32, len: i32) -> Option<String> {
    let ptr = GuestPtr::<str>::new((ptr.cast_unsigned(), len.cast_unsigned()));
    memory.as_cow_str(ptr).ok().map(|s| s.into_owned())
}

/// The size of `fd` when it is a regular file.
async fn file_size(sandbox: &mut Sandbox, memory: &mut GuestMemory<'_>, raw: i32) -> Option<u64> {
    let stat = sandbox.wasi.fd_filestat_get(memory, fd(raw)).await.ok()?;
    (stat.filetype == Filetype::RegularFile).then_some(stat.size)
}

/// The length of what `fd_write`/`fd_pwrite` will write: the first non-empty buffer only, as
/// wasmtime-wasi writes.
fn write_len(memory: &GuestMemory<'_>, iovs: i32, iovs_len: i32) -> u64 {
    let array = GuestPtr::<[types::Ciovec]>::new((iovs.cast_unsigned(), iovs_len.cast_unsigned()));
    for iov in array.iter() {
        let Ok(iov) = iov else { return 0 };
        let Ok(iov) = memory.read(iov) else { return 0 };
        if iov.buf_len != 0 {
            return u64::from(iov.buf_len);
        }
    }
    0
}

/// Where a write at the current position of `fd` lands: its position, or its end in append
/// mode.
async fn write_position(
    sandbox: &mut Sandbox,
    memory: &mut GuestMemory<'_>,
    raw: i32,
    size: u64,
) -> u64 {
    let append = match sandbox.wasi.fd_fdstat_get(memory, fd(raw)).await {
        Ok(stat) => stat.fs_flags.bits() & FDFLAGS_APPEND != 0,
        Err(_) => false,
    };
    if append {
        return size;
    }
    sandbox.wasi.fd_tell(memory, fd(raw)).unwrap_or(size)
}

/// How a metered call changes a file's size, for truing the count up after it.
#[derive(Clone, Copy)]
enum Growth {
    /// A write at this position: on success the file ends at least at the position plus the
    /// bytes the call reports written (at `nwritten` in guest memory). The app is the file's
    /// only writer and has one thread, so this is the size a `stat` would give, without one.
    WriteAt { position: u64, nwritten: i32 },
    /// Anything else: the size is asked of the file.
    Unknown,
}

/// Charges a call that makes a file of `size` bytes end at most at `end`, runs it, then trues
/// the count up with the file's new size.
async fn metered_write<F>(
    sandbox: &mut Sandbox,
    memory: &mut GuestMemory<'_>,
    raw: i32,
    (before, end): (u64, u64),
    growth_kind: Growth,
    write: F,
) -> wasmtime::Result<i32>
where
    F: AsyncFnOnce(&mut Sandbox, &mut GuestMemory<'_>) -> wasmtime::Result<i32>,
{
    let growth = end.saturating_sub(before);
    sandbox.meter.charge_bytes(growth)?;
    let result = write(sandbox, memory).await;
    let written = match (growth_kind, &result) {
        (Growth::WriteAt { position, nwritten }, Ok(0)) => {
            let ptr = GuestPtr::<u32>::new(nwritten.cast_unsigned());
            memory.read(ptr).ok().map(|n| before.max(position.saturating_add(u64::from(n))))
        }
        _ => None,
    };
    let after = match written {
        Some(after) => after,
        None => file_size(sandbox, memory, raw).await.unwrap_or(before),
    };
    sandbox.meter.refund_bytes(growth);
    if after > before {
        // Within the quota: `after` is at most `end`.
        sandbox.meter.charge_bytes(after - before)?;
    } else {
        sandbox.meter.refund_bytes(before - after);
    }
    result
}

/// An `fd_write` or `fd_pwrite` call: the descriptor, the guest's buffers, where the call
/// reports the bytes written, and the offset of a `pwrite` (`None`: the descriptor's position,
/// or its end in append mode).
struct WriteCall {
    raw: i32,
    iovs: i32,
    iovs_len: i32,
    nwritten: i32,
    offset: Option<u64>,
}

/// Runs a write, metered when it goes to a regular file.
async fn metered_write_call<F>(
    sandbox: &mut Sandbox,
    memory: &mut GuestMemory<'_>,
    call: WriteCall,
    write: F,
) -> wasmtime::Result<i32>
where
    F: AsyncFnOnce(&mut Sandbox, &mut GuestMemory<'_>) -> wasmtime::Result<i32>,
{
    let WriteCall { raw, iovs, iovs_len, nwritten, offset } = call;
    let Some(size) = file_size(sandbox, memory, raw).await else {
        return write(sandbox, memory).await;
    };
    let position = match offset {
        Some(offset) => offset,
        None => write_position(sandbox, memory, raw, size).await,
    };
    let end = position.saturating_add(write_len(memory, iovs, iovs_len));
    let growth = Growth::WriteAt { position, nwritten };
    metered_write(sandbox, memory, raw, (size, end), growth, write).await
}

/// Shadows the WASI calls that grow the output directory with metered ones. `linker` already
/// holds wasmtime-wasi's preview-1 functions.
pub(super) fn add_to_linker(linker: &mut Linker<Sandbox>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);

    linker.func_wrap_async(
        MODULE,
        "fd_write",
        |mut caller: Caller<'_, Sandbox>, (raw, iovs, iovs_len, nwritten): (i32, i32, i32, i32)| {
            Box::new(async move {
                let (mut memory, sandbox) = split(&mut caller)?;
                let write = WriteCall { raw, iovs, iovs_len, nwritten, offset: None };
                metered_write_call(sandbox, &mut memory, write, async |sandbox, memory| {
                    p1::fd_write(&mut sandbox.wasi, memory, raw, iovs, iovs_len, nwritten).await
                })
                .await
            })
        },
    )?;

    linker.func_wrap_async(
        MODULE,
        "fd_pwrite",
        |mut caller: Caller<'_, Sandbox>,
         (raw, iovs, iovs_len, offset, nwritten): (i32, i32, i32, i64, i32)| {
            Box::new(async move {
                let (mut memory, sandbox) = split(&mut caller)?;
                let position = Some(offset.cast_unsigned());
                let write = WriteCall { raw, iovs, iovs_len, nwritten, offset: position };
                metered_write_call(sandbox, &mut memory, write, async |sandbox, memory| {
                    p1::fd_pwrite(&mut sandbox.wasi, memory, raw, iovs, iovs_len, offset, nwritten)
                        .await
                })
                .await
            })
        },
    )?;

    linker.func_wrap_async(
        MODULE,
        "fd_filestat_set_size",
        |mut caller: Caller<'_, Sandbox>, (raw, new_size): (i32, i64)| {
            Box::new(async move {
                let (mut memory, sandbox) = split(&mut caller)?;
                let Some(size) = file_size(sandbox, &mut memory, raw).await else {
                    return p1::fd_filestat_set_size(&mut sandbox.wasi, &mut memory, raw, new_size)
                        .await;
                };
                let end = new_size.cast_unsigned();
                let growth = Growth::Unknown;
                metered_write(
                    sandbox,
                    &mut memory,
                    raw,
                    (size, end),
                    growth,
                    async |sandbox, memory| {
                        p1::fd_filestat_set_size(&mut sandbox.wasi, memory, raw, new_size).await
                    },
                )
                .await
            })
        },
    )?;

    linker.func_wrap_async(
        MODULE,
        "path_open",
        |mut caller: Caller<'_, Sandbox>,
         (dirfd, dirflags, path, path_len, oflags, base, inheriting, fdflags, opened): (
            i32,
            i32,
            i32,
            i32,
            i32,
            i64,
            i64,
            i32,
            i32,
        )| {
            Box::new(async move {
                let (mut memory, sandbox) = split(&mut caller)?;
                let open = async |sandbox: &mut Sandbox, memory: &mut GuestMemory<'_>| {
                    p1::path_open(
                        &mut sandbox.wasi,
                        memory,
                        dirfd,
                        dirflags,
                        path,
                        path_len,
                        oflags,
                        base,
                        inheriting,
                        fdflags,
                        opened,
                    )
                    .await
                };
                if oflags & (OFLAGS_CREAT | OFLAGS_TRUNC) == 0 {
                    return open(sandbox, &mut memory).await;
                }
                let existing = existing(sandbox, &mut memory, dirfd, path, path_len).await;
                let created = existing.is_none() && oflags & OFLAGS_CREAT != 0;
                if created {
                    let name = guest_str(&memory, path, path_len).unwrap_or_default();
                    sandbox.meter.check_path(&name)?;
                    sandbox.meter.charge_entry()?;
                }
                let errno = open(sandbox, &mut memory).await?;
                if errno != 0 && created {
                    sandbox.meter.refund_entry();
                }
                if errno == 0
                    && oflags & OFLAGS_TRUNC != 0
                    && let Some(stat) = existing
                    && stat.filetype == Filetype::RegularFile
                {
                    sandbox.meter.refund_bytes(stat.size);
                }
                Ok(errno)
            })
        },
    )?;

    linker.func_wrap_async(
        MODULE,
        "path_create_directory",
        |mut caller: Caller<'_, Sandbox>, (dirfd, path, path_len): (i32, i32, i32)| {
            Box::new(async move {
                let (mut memory, sandbox) = split(&mut caller)?;
                let name = guest_str(&memory, path, path_len).unwrap_or_default();
                sandbox.meter.check_path(&name)?;
                sandbox.meter.charge_entry()?;
                let errno = p1::path_create_directory(
                    &mut sandbox.wasi,
                    &mut memory,
                    dirfd,
                    path,
                    path_len,
                )
                .await?;
                if errno != 0 {
                    sandbox.meter.refund_entry();
                }
                Ok(errno)
            })
        },
    )?;

    linker.func_wrap_async(
        MODULE,
        "path_rename",
        |mut caller: Caller<'_, Sandbox>,
         (old_fd, old_path, old_len, new_fd, new_path, new_len): (i32, i32, i32, i32, i32, i32)| {
            Box::new(async move {
                let (mut memory, sandbox) = split(&mut caller)?;
                let name = guest_str(&memory, new_path, new_len).unwrap_or_default();
                sandbox.meter.check_path(&name)?;
                p1::path_rename(
                    &mut sandbox.wasi,
                    &mut memory,
                    old_fd,
                    old_path,
                    old_len,
                    new_fd,
                    new_path,
                    new_len,
                )
                .await
            })
        },
    )?;

    // A result holds regular files and directories only: the store refuses links, and a hard
    // link would count its content twice in the archive.
    linker.func_wrap(
        MODULE,
        "path_link",
        |_: Caller<'_, Sandbox>, _: i32, _: i32, _: i32, _: i32, _: i32, _: i32, _: i32| {
            Ok(ERRNO_NOTSUP)
        },
    )?;
    linker.func_wrap(
        MODULE,
        "path_symlink",
        |_: Caller<'_, Sandbox>, _: i32, _: i32, _: i32, _: i32, _: i32| Ok(ERRNO_NOTSUP),
    )?;

    linker.func_wrap_async(
        MODULE,
        "path_unlink_file",
        |mut caller: Caller<'_, Sandbox>, (dirfd, path, path_len): (i32, i32, i32)| {
            Box::new(async move {
                let (mut memory, sandbox) = split(&mut caller)?;
                let existing = existing(sandbox, &mut memory, dirfd, path, path_len).await;
                let errno =
                    p1::path_unlink_file(&mut sandbox.wasi, &mut memory, dirfd, path, path_len)
                        .await?;
                if errno == 0
                    && let Some(stat) = existing
                {
                    sandbox.meter.refund_entry();
                    if stat.filetype == Filetype::RegularFile && stat.nlink <= 1 {
                        sandbox.meter.refund_bytes(stat.size);
                    }
                }
                Ok(errno)
            })
        },
    )?;

    linker.func_wrap_async(
        MODULE,
        "path_remove_directory",
        |mut caller: Caller<'_, Sandbox>, (dirfd, path, path_len): (i32, i32, i32)| {
            Box::new(async move {
                let (mut memory, sandbox) = split(&mut caller)?;
                let errno = p1::path_remove_directory(
                    &mut sandbox.wasi,
                    &mut memory,
                    dirfd,
                    path,
                    path_len,
                )
                .await?;
                if errno == 0 {
                    sandbox.meter.refund_entry();
                }
                Ok(errno)
            })
        },
    )?;

    linker.allow_shadowing(false);
    Ok(())
}

/// The entry `path` names under `dirfd`, without following a final symbolic link, if it exists.
async fn existing(
    sandbox: &mut Sandbox,
    memory: &mut GuestMemory<'_>,
    dirfd: i32,
    path: i32,
    path_len: i32,
) -> Option<types::Filestat> {
    let ptr = GuestPtr::<str>::new((path.cast_unsigned(), path_len.cast_unsigned()));
    sandbox.wasi.path_filestat_get(memory, fd(dirfd), types::Lookupflags::empty(), ptr).await.ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_size_ignores_empty_and_dot_components() {
        assert_eq!(path_size("a/bc/d"), (6, 3));
        assert_eq!(path_size("./a//bc/"), (4, 2));
        assert_eq!(path_size(""), (0, 0));
    }
}
