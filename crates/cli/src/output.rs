//! Output: results on stdout, as JSON with `--json` or as text and tables; everything else
//! (progress, logs, errors) on stderr.

use std::{
    io::{IsTerminal, Write},
    time::{Duration, Instant},
};

use serde::Serialize;

/// How long a download runs before its progress is shown (short ones stay quiet).
pub(crate) const DOWNLOAD_PROGRESS_AFTER: Duration = Duration::from_secs(1);
/// How often a download's progress line is redrawn.
pub(crate) const DOWNLOAD_PROGRESS_EVERY: Duration = Duration::from_millis(200);

/// Writes one line to stdout. A reader that went away (`poco ... | head`) ends the command
/// quietly with success, as other Unix tools do, instead of a panic.
pub(crate) fn stdout_line(text: &str) {
    let mut stdout = std::io::stdout().lock();
    if let Err(error) = writeln!(stdout, "{text}").and_then(|()| stdout.flush()) {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to stdout: {error}");
        std::process::exit(1);
    }
}

/// How a command prints its results.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Output {
    json: bool,
}

impl Output {
    /// JSON or human output.
    pub(crate) fn new(json: bool) -> Self {
        Self { json }
    }

    /// Whether results are JSON.
    pub(crate) fn is_json(&self) -> bool {
        self.json
    }

    /// Prints a result: `value` as JSON, or `human` for people.
    pub(crate) fn result<T: Serialize>(&self, value: &T, human: impl FnOnce() -> String) {
        if self.json {
            stdout_line(&serde_json::to_string_pretty(value).expect("serializable"));
        } else {
            let text = human();
            if !text.is_empty() {
                stdout_line(text.trim_end());
            }
        }
    }

    /// A download's progress for people: `received / total` bytes on one stderr line, shown
    /// only on a terminal, without `--json`, and once the download has taken
    /// [`DOWNLOAD_PROGRESS_AFTER`] (a short one prints nothing).
    pub(crate) fn download_progress(&self) -> impl FnMut(u64, Option<u64>) + Send + use<> {
        let shown = !self.json && std::io::stderr().is_terminal();
        let started = Instant::now();
        let mut last: Option<Instant> = None;
        move |received, total| {
            if !shown || started.elapsed() < DOWNLOAD_PROGRESS_AFTER {
                return;
            }
            let done = total == Some(received);
            if !done && last.is_some_and(|at| at.elapsed() < DOWNLOAD_PROGRESS_EVERY) {
                return;
            }
            last = Some(Instant::now());
            let total = total.map_or_else(|| "?".to_owned(), |total| total.to_string());
            let end = if done { "\n" } else { "" };
            eprint!("\rdownloading the result: {received} / {total} bytes{end}");
        }
    }

    /// Progress for people, on stderr; silent with `--json`.
    pub(crate) fn progress(&self, message: impl AsRef<str>) {
        if !self.json {
            eprintln!("{}", message.as_ref());
        }
    }
}

/// Key-value lines, keys aligned.
pub(crate) fn fields(pairs: &[(&str, String)]) -> String {
    let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    pairs.iter().map(|(k, v)| format!("{k:<width$}  {v}\n")).collect()
}

/// A table with a header row, columns aligned.
pub(crate) fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<width$}  ", width = widths[i]));
            }
        }
        out.trim_end().to_owned() + "\n"
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_their_columns() {
        let text = table(&["task", "status"], &[vec!["0x01".into(), "COMPLETED".into()]]);
        assert_eq!(text, "task  status\n0x01  COMPLETED\n");
        assert_eq!(fields(&[("a", "1".into()), ("long", "2".into())]), "a     1\nlong  2\n");
    }
}
