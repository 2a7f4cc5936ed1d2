//! The file-system helpers every layer uses: atomic writes and checked output folders.

use crate::error::{Error, Result};
use std::io::Write;
use std::path::Path;

/// Writes to a temporary file beside `path`, then renames it over `path`: readers never see
/// half a file, and an interrupted write leaves the old one. A failure is reported as a
/// write error naming `path` (a full disk says "No space left on device").
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomically_with(path, |w| {
        w.write_all(bytes).map_err(|e| Error::write(path, e))
    })
}

/// [`write_atomically`] for files written piece by piece (a multi-gigabyte GGUF): `write`
/// fills a buffered temporary file, which replaces `path` only when `write` succeeds.
pub fn write_atomically_with(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> Result<()>,
) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::write(dir, e))?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let written = (|| {
        let file = std::fs::File::create(&tmp).map_err(|e| Error::write(path, e))?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
        write(&mut out)?;
        let file = out
            .into_inner()
            .map_err(|e| Error::write(path, e.into_error()))?;
        file.sync_all()
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|e| Error::write(path, e))
    })();
    if written.is_err() {
        // A half-written temporary file is debris, not a result.
        let _ = std::fs::remove_file(&tmp);
    }
    written
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
