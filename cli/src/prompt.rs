//! Reading a secret on the terminal without echoing it.
//!
//! Echo is turned off *before* the prompt is written, so nothing typed
//! after the prompt shows (typing ahead of it included), and turned back on
//! however the read ends.

use std::io::{self, BufRead, BufReader, Write};

/// Writes `prompt` to the terminal and reads one line from it with echo
/// off; the line without its newline.
///
/// # Errors
/// No terminal, or reading it fails.
#[cfg(unix)]
pub(crate) fn hidden(prompt: &str) -> io::Result<String> {
    use rustix::termios::{LocalModes, OptionalActions, tcgetattr, tcsetattr};

    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")?;
    let saved = tcgetattr(&tty)?;
    let mut quiet = saved.clone();
    quiet.local_modes.remove(LocalModes::ECHO);
    // The newline the user types still moves the cursor on.
    quiet.local_modes.insert(LocalModes::ECHONL);
    tcsetattr(&tty, OptionalActions::Flush, &quiet)?;
    // Restores the terminal on every way out of this function.
    struct Restore<'a>(&'a std::fs::File, rustix::termios::Termios);
    impl Drop for Restore<'_> {
        fn drop(&mut self) {
            let _ = tcsetattr(self.0, OptionalActions::Now, &self.1);
        }
    }
    let _restore = Restore(&tty, saved);
    let mut out = &tty;
    out.write_all(prompt.as_bytes())?;
    out.flush()?;
    let mut line = String::new();
    BufReader::new(&tty).read_line(&mut line)?;
    let line = line
        .strip_suffix("\r\n")
        .or_else(|| line.strip_suffix('\n'))
        .unwrap_or(&line);
    Ok(line.to_owned())
}

/// Elsewhere: no way to turn echo off here, so refuse rather than show it.
#[cfg(not(unix))]
pub(crate) fn hidden(_prompt: &str) -> io::Result<String> {
    Err(io::Error::other(
        "reading a hidden value needs a Unix terminal; pipe the value on stdin instead",
    ))
}
