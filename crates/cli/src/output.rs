//! Output: results on stdout, as JSON with `--json` or as text and tables; everything else
//! (progress, logs, errors) on stderr.
//!
//! People get colour (only on a terminal, and never with `NO_COLOR` set: the stream strips it
//! otherwise), short hashes in tables (`--wide` for whole ones), local dates with the time
//! from now, and progress drawn while they wait (spinners and bars, on a terminal only,
//! never with `--json` or `-q`).

use std::{
    future::Future,
    io::{IsTerminal, Write},
    time::Duration,
};

use anstyle::{AnsiColor, Style};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

/// How often a spinner turns.
const TICK: Duration = Duration::from_millis(120);

/// Writes one line to stdout (colour stripped unless it is a terminal that wants it). A
/// reader that went away (`poco ... | head`) ends the command quietly with success, as other
/// Unix tools do, instead of a panic.
pub(crate) fn stdout_line(text: &str) {
    let mut stdout = anstream::stdout().lock();
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
    quiet: bool,
    wide: bool,
}

impl Output {
    /// JSON or human output; `quiet`, without progress; `wide`, whole hashes in tables.
    pub(crate) fn new(json: bool, quiet: bool, wide: bool) -> Self {
        Self { json, quiet, wide }
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

    /// Whether progress is drawn: for people (no `--json`, no `-q`) on a terminal.
    pub(crate) fn draws_progress(&self) -> bool {
        !self.json && !self.quiet && std::io::stderr().is_terminal()
    }

    /// Progress for people, on stderr; silent with `--json` and `-q`.
    pub(crate) fn progress(&self, message: impl AsRef<str>) {
        if !self.json && !self.quiet {
            // Styles are dropped unless stderr is a terminal that wants them.
            let _ = writeln!(anstream::stderr(), "{}", message.as_ref());
        }
    }

    /// Runs `work`, a wait (transactions, a start-up), showing `message` the while: a spinner
    /// with the time spent on a terminal, else one progress line.
    pub(crate) async fn during<T>(&self, message: &str, work: impl Future<Output = T>) -> T {
        let spinner = self.spinner(message);
        if spinner.is_hidden() {
            self.progress(format!("{message}..."));
        }
        let out = work.await;
        spinner.finish_and_clear();
        out
    }

    /// A spinner showing `message` and the time spent, turning by itself until it is finished;
    /// hidden when progress is not drawn.
    pub(crate) fn spinner(&self, message: &str) -> ProgressBar {
        if !self.draws_progress() {
            return ProgressBar::hidden();
        }
        let spinner = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        spinner.set_style(
            ProgressStyle::with_template("{spinner:.cyan} {elapsed:.dim} {wide_msg}")
                .expect("a valid template"),
        );
        spinner.set_message(message.to_owned());
        spinner.enable_steady_tick(TICK);
        spinner
    }

    /// A download's progress: bytes received of the total, with the rate; hidden when
    /// progress is not drawn.
    pub(crate) fn download_bar(&self, what: &str) -> ProgressBar {
        if !self.draws_progress() {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{msg} [{bar:30.cyan/dim}] {bytes}/{total_bytes} {bytes_per_sec} {elapsed:.dim}",
            )
            .expect("a valid template")
            .progress_chars("=> "),
        );
        bar.set_message(what.to_owned());
        bar
    }

    /// What a download reports its progress to (`received`, `total` bytes): `bar`.
    pub(crate) fn download_progress(
        bar: &ProgressBar,
    ) -> impl FnMut(u64, Option<u64>) + Send + use<> {
        let bar = bar.clone();
        move |received, total| {
            if let Some(total) = total {
                bar.set_length(total);
            }
            bar.set_position(received);
        }
    }

    /// The display of a watch over `count` tasks: a bar of those done, and a line per task
    /// (the first [`TaskBoard::MAX_LINES`]); hidden when progress is not drawn.
    pub(crate) fn task_board(&self, count: usize) -> TaskBoard {
        TaskBoard::new(self.draws_progress(), count)
    }

    /// A hash as a table shows it: shortened (`0x1a2b3c…4d5e`) unless `--wide`.
    pub(crate) fn hash(&self, hash: impl std::fmt::Display) -> String {
        let text = hash.to_string();
        if self.wide || text.len() <= 16 {
            return text;
        }
        format!("{}…{}", &text[..8], &text[text.len() - 4..])
    }
}

/// The progress of a watch: a bar of the tasks done and, under it, each task's status.
pub(crate) struct TaskBoard {
    total: ProgressBar,
    tasks: Vec<ProgressBar>,
    _multi: Option<MultiProgress>,
}

impl TaskBoard {
    /// Most tasks given a line of their own; a larger deal shows its bar only.
    pub(crate) const MAX_LINES: usize = 10;

    fn new(drawn: bool, count: usize) -> Self {
        if !drawn {
            return Self { total: ProgressBar::hidden(), tasks: Vec::new(), _multi: None };
        }
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let total = multi.add(ProgressBar::new(count as u64));
        total.set_style(
            ProgressStyle::with_template(
                "{spinner:.cyan} tasks done [{bar:30.green/dim}] {pos}/{len} {elapsed:.dim}",
            )
            .expect("a valid template")
            .progress_chars("=> "),
        );
        total.enable_steady_tick(TICK);
        let tasks = (0..count.min(Self::MAX_LINES))
            .map(|_| {
                let line = multi.add(ProgressBar::new_spinner());
                line.set_style(ProgressStyle::with_template("  {msg}").expect("a valid template"));
                line
            })
            .collect();
        Self { total, tasks, _multi: Some(multi) }
    }

    /// Shows where the tasks are: `(label, status, final)` of each, in order.
    pub(crate) fn update(&self, tasks: &[(String, String, bool)]) {
        let done = tasks.iter().filter(|(_, _, done)| *done).count();
        self.total.set_position(done as u64);
        for (line, (label, status, _)) in self.tasks.iter().zip(tasks) {
            line.set_message(format!("{label}  {}", paint_status(status)));
        }
    }

    /// Takes the display off the terminal (the result is printed next).
    pub(crate) fn clear(&self) {
        for line in &self.tasks {
            line.finish_and_clear();
        }
        self.total.finish_and_clear();
    }
}

/// A status in its colour: green when it succeeded, red when it failed, yellow on its way.
pub(crate) fn paint_status(status: &str) -> String {
    let colour = match status {
        "COMPLETED" | "open" | "filled" => AnsiColor::Green,
        "FAILED" | "TIMEOUT" | "CLAIMED" | "cancelled" => AnsiColor::Red,
        _ => AnsiColor::Yellow,
    };
    paint(status, colour.on_default())
}

/// `text` in `style` (the stream drops the style where colour is not wanted).
pub(crate) fn paint(text: &str, style: Style) -> String {
    format!("{style}{text}{style:#}")
}

/// The width `text` takes on a terminal, its styles left out.
fn visible_width(text: &str) -> usize {
    anstream::adapter::strip_str(text).to_string().chars().count()
}

/// Key-value lines, keys aligned.
pub(crate) fn fields(pairs: &[(&str, String)]) -> String {
    let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    pairs.iter().map(|(k, v)| format!("{k:<width$}  {v}\n")).collect()
}

/// A table with a bold header row, columns aligned (styles in cells take no width).
pub(crate) fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(visible_width(cell));
        }
    }
    let line = |cells: Vec<String>| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            out.push_str(cell);
            if i + 1 < cells.len() {
                out.push_str(&" ".repeat(widths[i] - visible_width(cell) + 2));
            }
        }
        out.trim_end().to_owned() + "\n"
    };
    let bold = Style::new().bold();
    let mut out = line(header.iter().map(|h| paint(h, bold)).collect());
    for row in rows {
        out.push_str(&line(row.clone()));
    }
    out
}

/// A unix time for people: the local date and time in ISO 8601, and how far it is from now
/// (`2026-12-07T10:35:00+01:00 (in 35 min)`).
pub(crate) fn when(seconds: u64) -> String {
    let now = jiff::Timestamp::now().as_second();
    when_from(seconds, now, &jiff::tz::TimeZone::system())
}

fn when_from(seconds: u64, now: i64, zone: &jiff::tz::TimeZone) -> String {
    let Ok(at) = jiff::Timestamp::from_second(i64::try_from(seconds).unwrap_or(i64::MAX)) else {
        return seconds.to_string();
    };
    let local = at.to_zoned(zone.clone()).strftime("%Y-%m-%dT%H:%M:%S%:z").to_string();
    let delta = at.as_second() - now;
    let span = |s: i64| match s {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min", s / 60),
        s if s < 86_400 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        s => format!("{} d {} h", s / 86_400, s % 86_400 / 3600),
    };
    if delta >= 0 {
        format!("{local} (in {})", span(delta))
    } else {
        format!("{local} ({} ago)", span(-delta))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_their_columns() {
        let strip = |text: String| anstream::adapter::strip_str(&text).to_string();
        let text = table(&["task", "status"], &[vec!["0x01".into(), "COMPLETED".into()]]);
        assert_eq!(strip(text), "task  status\n0x01  COMPLETED\n");
        let painted = table(&["status", "n"], &[vec![paint_status("FAILED"), "1".into()]]);
        assert_eq!(strip(painted), "status  n\nFAILED  1\n");
        assert_eq!(fields(&[("a", "1".into()), ("long", "2".into())]), "a     1\nlong  2\n");
    }

    #[test]
    fn hashes_are_short_in_tables_unless_wide() {
        let hash = format!("0x{}", "ab".repeat(32));
        assert_eq!(Output::new(false, false, false).hash(&hash), "0xababab…abab");
        assert_eq!(Output::new(false, false, true).hash(&hash), hash);
    }

    #[test]
    fn times_are_local_iso_dates_with_the_time_from_now() {
        let utc = jiff::tz::TimeZone::UTC;
        let now = 1_796_000_000;
        assert_eq!(when_from(1_796_002_100, now, &utc), "2026-11-30T01:28:20+00:00 (in 35 min)");
        assert_eq!(when_from(1_795_999_990, now, &utc), "2026-11-30T00:53:10+00:00 (10 s ago)");
        let paris = jiff::tz::TimeZone::get("Europe/Paris").unwrap();
        assert!(when_from(1_796_000_000, now, &paris).starts_with("2026-11-30T01:53:20+01:00"));
    }
}
