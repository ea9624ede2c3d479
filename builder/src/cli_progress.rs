//! Progress on stderr: on a terminal a spinner with the current step, which becomes a bar with
//! bytes, rate and ETA while downloads run; plain `envpack: STEP` lines otherwise; nothing with
//! `--quiet` or `--json`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use envpack_net::Meter;
use indicatif::{ProgressBar, ProgressStyle};

const TICK: Duration = Duration::from_millis(100);

/// The terminal's bar, while there is one: log lines are written around it.
static SHOWN: OnceLock<ProgressBar> = OnceLock::new();

/// stderr for log lines: with a bar on the terminal, the bar steps aside for each line rather
/// than being drawn through.
#[derive(Default)]
pub struct LogWriter;

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match SHOWN.get() {
            Some(bar) => bar.suspend(|| std::io::stderr().write(buf)),
            None => std::io::stderr().write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// The progress of one command.
pub struct Progress {
    bar: Option<ProgressBar>,
    quiet: bool,
    meter: OnceLock<Meter>,
    stop: Arc<AtomicBool>,
}

impl Progress {
    /// Progress on stderr, a bar if it is a terminal; none at all when `quiet`.
    pub fn new(quiet: bool) -> Self {
        use std::io::IsTerminal;
        // Drawn from the first step on: a command that has no steps (verify, init, man)
        // leaves no spinner above its result.
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let b = ProgressBar::hidden();
            let _ = SHOWN.set(b.clone());
            b
        });
        Progress {
            bar,
            quiet,
            meter: OnceLock::new(),
            stop: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Shows the bytes of `meter`'s downloads while they run (on a terminal).
    pub fn watch(&self, meter: &Meter) {
        let Some(bar) = self.bar.clone() else {
            return;
        };
        if self.meter.set(meter.clone()).is_err() {
            return;
        }
        let (meter, stop) = (meter.clone(), self.stop.clone());
        std::thread::spawn(move || {
            let mut downloading = false;
            while !stop.load(Ordering::Relaxed) {
                downloading = show(&bar, &meter, downloading);
                std::thread::sleep(TICK);
            }
        });
    }

    /// The current step.
    pub fn step(&self, msg: &str) {
        match &self.bar {
            Some(b) => {
                if b.is_hidden() {
                    b.set_draw_target(indicatif::ProgressDrawTarget::stderr());
                    b.set_style(ProgressStyle::default_spinner());
                    b.enable_steady_tick(Duration::from_millis(120));
                }
                b.set_message(msg.to_string());
                // A step that starts downloads shows the bar at once, however short they are.
                if let Some(m) = self.meter.get() {
                    show(b, m, false);
                }
            }
            None if !self.quiet => eprintln!("envpack: {msg}"),
            None => {}
        }
    }

    /// Clears the bar (before results are printed, and at the end).
    pub fn done(&self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// Draws `bar` as a byte bar while `meter` has bytes to come, else as the spinner; returns
/// whether it is a byte bar now.
fn show(bar: &ProgressBar, meter: &Meter, was_bar: bool) -> bool {
    let (received, expected) = meter.progress();
    let downloading = expected > 0 && received < expected;
    if downloading {
        if !was_bar {
            bar.set_style(bytes_style());
        }
        bar.set_length(expected);
        bar.set_position(received);
        bar.tick();
    } else if was_bar {
        bar.set_style(ProgressStyle::default_spinner());
    }
    downloading
}

fn bytes_style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{spinner} {msg} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, ETA {eta})",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ")
}
