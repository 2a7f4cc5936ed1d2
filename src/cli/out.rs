//! Standard output that never panics: a reader that went away (`llm-bench ... | head -c 1`)
//! ends the output quietly, and any other failure (`> /dev/full`) is an error naming stdout,
//! where `print!` would panic with exit 101.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

static CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes `text` to stdout and flushes it.
pub fn print(text: &str) -> anyhow::Result<()> {
    if CLOSED.load(Ordering::Relaxed) {
        return Ok(());
    }
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            CLOSED.store(true, Ordering::Relaxed);
            Ok(())
        }
        Err(e) => Err(anyhow::anyhow!(
            "cannot write to standard output: {e}; redirect it to a writable file or a terminal"
        )),
    }
}

/// `println!` through [`print`]: `outln!("{x}")?`.
macro_rules! outln {
    () => { $crate::cli::out::print("\n") };
    ($($arg:tt)*) => { $crate::cli::out::print(&(format!($($arg)*) + "\n")) };
}

/// `print!` through [`print`].
macro_rules! out {
    ($($arg:tt)*) => { $crate::cli::out::print(&format!($($arg)*)) };
}

pub(crate) use {out, outln};
