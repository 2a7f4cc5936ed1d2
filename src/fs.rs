//! The file-system helpers every layer uses: atomic writes and checked output folders.

use crate::error::{Error, Result};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Temporary files being written now, removed by [`remove_temporaries_on_signals`]'s handler
/// when the process is interrupted mid-write.
static TEMPORARIES: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn temporaries() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    TEMPORARIES.lock().unwrap_or_else(|p| p.into_inner())
}

/// On SIGINT, SIGTERM or SIGHUP, removes the temporary files of writes in progress, then lets
/// the signal end the process as it would have (the exit status still says which signal).
/// Call once, at the start of `main`.
pub fn remove_temporaries_on_signals() -> std::io::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                // Held until the process ends: no write registers a new file meanwhile.
                let mut pending = temporaries();
                for path in pending.drain(..) {
                    let _ = std::fs::remove_file(path);
                }
                let _ = signal_hook::low_level::emulate_default_handler(signal);
                std::process::exit(128 + signal);
            }
        })?;
    Ok(())
}

/// Writes to a temporary file beside `path`, then renames it over `path`: readers never see
/// half a file, and an interrupted write leaves the old one. A failure is reported as a
/// write error naming `path` (a full disk says "No space left on device"). A `path` that is
/// not a regular file is never replaced: a character device or a FIFO (`/dev/null`,
/// `/dev/stdout`) is written in place, anything else (a directory, a block device, a socket)
/// is refused by name.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomically_with(path, write_all(path, bytes))
}

/// A writer's job of writing `bytes`, a failure named by `path`.
fn write_all<'a>(
    path: &'a Path,
    bytes: &'a [u8],
) -> impl FnOnce(&mut dyn Write) -> Result<()> + 'a {
    move |w| w.write_all(bytes).map_err(|e| Error::write(path, e))
}

/// [`write_atomically`] for files written piece by piece (a multi-gigabyte GGUF): `write`
/// fills a buffered temporary file, which replaces `path` only when `write` succeeds.
pub fn write_atomically_with(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> Result<()>,
) -> Result<()> {
    match existing_kind(path) {
        Existing::Nothing | Existing::RegularFile => {}
        Existing::WriteInPlace => return write_in_place(path, write),
        Existing::Refused(what) => return Err(refused(path, what)),
    }
    let tmp = stage(path, write)?;
    commit(&tmp, path)
}

/// Writes several files as one: every file goes to a temporary beside it first, and only when
/// all of them are written are they renamed into place. A failure (a full disk) leaves none
/// of them, and none of the temporaries.
pub fn write_all_atomically(files: &[(PathBuf, &[u8])]) -> Result<()> {
    let (mut in_place, mut replaced) = (Vec::new(), Vec::new());
    for (path, bytes) in files {
        match existing_kind(path) {
            Existing::Refused(what) => return Err(refused(path, what)),
            Existing::WriteInPlace => in_place.push((path, bytes)),
            Existing::Nothing | Existing::RegularFile => replaced.push((path, bytes)),
        }
    }
    let mut staged = Vec::new();
    // Devices and FIFOs (`/dev/full`) are written before anything is renamed into place.
    let written = (|| {
        for (path, bytes) in &replaced {
            staged.push((stage(path, write_all(path, bytes))?, *path));
        }
        for (path, bytes) in &in_place {
            write_in_place(path, write_all(path, bytes))?;
        }
        Ok(())
    })();
    let mut staged = staged.into_iter();
    let committed = written.and_then(|()| {
        staged
            .by_ref()
            .try_for_each(|(tmp, path)| commit(&tmp, path))
    });
    // After a failure, whatever is still staged is debris.
    for (tmp, _) in staged {
        discard(&tmp);
    }
    committed
}

fn refused(path: &Path, what: &str) -> Error {
    Error::write(
        path,
        std::io::Error::other(format!(
            "it is {what}, not a regular file: name a file to write (llm-bench never replaces anything else)"
        )),
    )
}

/// A character device or a FIFO is written through, not replaced.
fn write_in_place(path: &Path, write: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| Error::write(path, e))?;
    let mut out = std::io::BufWriter::new(file);
    write(&mut out)?;
    out.flush().map_err(|e| Error::write(path, e))
}

/// Writes a temporary file beside `path` (registered for removal on a signal) and returns its
/// name; on failure removes it.
fn stage(path: &Path, write: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<PathBuf> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::write(dir, e))?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    temporaries().push(tmp.clone());
    let written = (|| {
        let file = std::fs::File::create(&tmp).map_err(|e| Error::write(path, e))?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
        write(&mut out)?;
        let file = out
            .into_inner()
            .map_err(|e| Error::write(path, e.into_error()))?;
        file.sync_all().map_err(|e| Error::write(path, e))
    })();
    match written {
        Ok(()) => Ok(tmp),
        Err(e) => {
            discard(&tmp);
            Err(e)
        }
    }
}

/// Renames a staged temporary over `path`.
fn commit(tmp: &Path, path: &Path) -> Result<()> {
    let renamed = std::fs::rename(tmp, path).map_err(|e| Error::write(path, e));
    if renamed.is_err() {
        let _ = std::fs::remove_file(tmp);
    }
    temporaries().retain(|p| p != tmp);
    renamed
}

/// A half-written temporary file is debris, not a result.
fn discard(tmp: &Path) {
    let _ = std::fs::remove_file(tmp);
    temporaries().retain(|p| p != tmp);
}

/// What is at an output path already, which decides how it may be written.
enum Existing {
    Nothing,
    RegularFile,
    /// A character device or a FIFO: written through, never replaced.
    WriteInPlace,
    /// Anything else, named ("a directory").
    Refused(&'static str),
}

fn existing_kind(path: &Path) -> Existing {
    use std::os::unix::fs::FileTypeExt;
    let Ok(meta) = std::fs::metadata(path) else {
        return Existing::Nothing;
    };
    let kind = meta.file_type();
    if kind.is_file() {
        Existing::RegularFile
    } else if kind.is_char_device() || kind.is_fifo() {
        Existing::WriteInPlace
    } else {
        Existing::Refused(special_kind(&meta).unwrap_or("not a file"))
    }
}

/// What a path that is neither a regular file nor a folder is ("a character device", "a
/// FIFO"), links followed; `None` for a file, a folder or nothing at all.
pub fn special_file(path: &Path) -> Option<&'static str> {
    let meta = std::fs::metadata(path).ok()?;
    if meta.is_file() || meta.is_dir() {
        return None;
    }
    special_kind(&meta)
}

fn special_kind(meta: &std::fs::Metadata) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    let kind = meta.file_type();
    Some(if kind.is_dir() {
        "a directory"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else {
        return None;
    })
}

/// The file in an output folder that a run holds locked while it writes there.
pub const LOCK_FILE: &str = ".llm-bench.lock";

/// An output folder held by this process: a second run into it is refused while this lives.
/// The lock is the operating system's (`flock`), so it ends with the process however that
/// ends, and a killed run leaves no stale lock.
#[derive(Debug)]
pub struct DirLock {
    _file: std::fs::File,
}

/// Takes `dir` for this run, or names the run that holds it.
pub fn lock_output_dir(dir: &Path) -> Result<DirLock> {
    use std::io::{Read, Seek};
    let path = dir.join(LOCK_FILE);
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| Error::write(&path, e))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            return Err(Error::OutputLocked {
                dir: dir.into(),
                holder: match holder.trim() {
                    "" => "a process that has not named itself yet".into(),
                    named => named.to_string(),
                },
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(Error::write(&path, e)),
    }
    let me = format!(
        "pid {}: {}",
        std::process::id(),
        std::env::args().collect::<Vec<_>>().join(" ")
    );
    file.set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| file.write_all(me.as_bytes()))
        .map_err(|e| Error::write(&path, e))?;
    Ok(DirLock { _file: file })
}

/// Checks that `dir` can take files, before any work: an unwritable folder is found in a
/// second, not after a half-hour run, and leaves nothing behind.
pub fn prepare_output_dir(dir: &Path) -> Result<()> {
    let fail = |cause| Error::OutputNotWritable {
        path: dir.into(),
        cause,
    };
    std::fs::create_dir_all(dir).map_err(fail)?;
    let probe = dir.join(format!(".llm-bench-write-test-{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(fail)?;
    std::fs::remove_file(&probe).map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileTypeExt;

    fn is_char_device(path: &Path) -> bool {
        std::fs::metadata(path).is_ok_and(|m| m.file_type().is_char_device())
    }

    #[test]
    fn devices_are_written_in_place_never_replaced() {
        write_atomically(Path::new("/dev/null"), b"results").unwrap();
        assert!(is_char_device(Path::new("/dev/null")));
        // A device that cannot take the bytes is an error naming it, and stays a device.
        let err = write_atomically(Path::new("/dev/full"), b"results")
            .unwrap_err()
            .to_string();
        assert!(err.contains("/dev/full") && err.contains("space"), "{err}");
        assert!(is_char_device(Path::new("/dev/full")));
    }

    #[test]
    fn directories_and_sockets_are_refused_by_name_and_left_as_they_are() {
        let dir = tempfile::tempdir().unwrap();
        let err = write_atomically(dir.path(), b"x").unwrap_err().to_string();
        assert!(err.contains("a directory, not a regular file"), "{err}");
        assert!(dir.path().is_dir());
        let socket = dir.path().join("sock");
        let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        let err = write_atomically(&socket, b"x").unwrap_err().to_string();
        assert!(err.contains("a socket") && err.contains("sock"), "{err}");
        assert!(std::fs::metadata(&socket).unwrap().file_type().is_socket());
        // Nothing left beside them.
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn a_fifo_is_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::read(&fifo).unwrap())
        };
        write_atomically(&fifo, b"through the pipe").unwrap();
        assert_eq!(reader.join().unwrap(), b"through the pipe");
        assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
    }

    #[test]
    fn an_output_folder_is_held_by_one_run_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let held = lock_output_dir(dir.path()).unwrap();
        let err = lock_output_dir(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains(&format!("pid {}", std::process::id())) && err.contains("another --out"),
            "{err}"
        );
        drop(held);
        lock_output_dir(dir.path()).unwrap();
    }

    #[test]
    fn files_written_as_one_are_all_written_or_none_is() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("blocker");
        std::fs::write(&blocker, b"a file where a folder would go").unwrap();
        let files: Vec<(PathBuf, &[u8])> = vec![
            (dir.path().join("a.svg"), b"<svg/>"),
            (blocker.join("b.svg"), b"<svg/>"),
            (dir.path().join("report.md"), b"# report"),
        ];
        let err = write_all_atomically(&files).unwrap_err().to_string();
        assert!(err.contains("blocker"), "{err}");
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(left, ["blocker"], "left behind: {left:?}");
        // /dev/full as one of them: nothing else is put in place.
        let files: Vec<(PathBuf, &[u8])> = vec![
            (dir.path().join("a.svg"), b"<svg/>"),
            (PathBuf::from("/dev/full"), b"# report"),
        ];
        let err = write_all_atomically(&files).unwrap_err().to_string();
        assert!(err.contains("/dev/full"), "{err}");
        assert!(!dir.path().join("a.svg").exists());
        // Both writable: both written.
        let files: Vec<(PathBuf, &[u8])> = vec![
            (dir.path().join("a.svg"), b"<svg/>"),
            (dir.path().join("report.md"), b"# report"),
        ];
        write_all_atomically(&files).unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("report.md")).unwrap(),
            b"# report"
        );
        assert!(!temporaries().iter().any(|p| p.starts_with(dir.path())));
    }

    #[test]
    fn a_regular_file_is_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.json");
        std::fs::write(&path, b"old and longer").unwrap();
        write_atomically(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
    }
}
