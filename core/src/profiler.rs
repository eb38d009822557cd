//! A scoped profiler: records each executed step of compiled programs and each eager op
//! (name, time), writes Chrome-trace JSON that Perfetto opens, and prints a top-N table.
//! Off by default; when off the cost is one thread-local flag check per step.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

thread_local! {
    static ACTIVE: Cell<bool> = const { Cell::new(false) };
    static EVENTS: RefCell<Vec<Event>> = const { RefCell::new(Vec::new()) };
    static ORIGIN: RefCell<Option<Instant>> = const { RefCell::new(None) };
}

/// One recorded step.
#[derive(Clone, Debug)]
pub struct Event {
    /// Primitive or step name.
    pub name: String,
    /// Start, relative to the profile's start.
    pub start: Duration,
    /// Duration.
    pub dur: Duration,
}

/// Whether a profile is being recorded on this thread.
pub fn is_active() -> bool {
    ACTIVE.with(|a| a.get())
}

pub(crate) fn record_step(name: &str, dur: Duration) {
    let now = Instant::now();
    let origin = ORIGIN.with(|o| *o.borrow_mut().get_or_insert(now));
    let start = now.saturating_duration_since(origin).saturating_sub(dur);
    EVENTS.with(|e| {
        e.borrow_mut().push(Event {
            name: name.to_string(),
            start,
            dur,
        })
    });
}

/// The result of a profiled region.
#[derive(Clone, Debug, Default)]
pub struct Profile {
    /// Every recorded step, in order.
    pub events: Vec<Event>,
}

/// Records every step and eager op executed on this thread while `f` runs.
pub fn profile<R>(f: impl FnOnce() -> R) -> (R, Profile) {
    let was = ACTIVE.with(|a| a.replace(true));
    EVENTS.with(|e| e.borrow_mut().clear());
    ORIGIN.with(|o| *o.borrow_mut() = Some(Instant::now()));
    let r = f();
    ACTIVE.with(|a| a.set(was));
    let events = EVENTS.with(|e| std::mem::take(&mut *e.borrow_mut()));
    (r, Profile { events })
}

impl Profile {
    /// Chrome-trace JSON (open in Perfetto or chrome://tracing).
    pub fn chrome_trace_json(&self) -> String {
        let mut s = String::from("{\"traceEvents\":[");
        for (i, e) in self.events.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            let name = e.name.replace('\\', "\\\\").replace('"', "\\\"");
            let _ = write!(
                s,
                "{{\"name\":\"{name}\",\"ph\":\"X\",\"pid\":1,\"tid\":1,\"ts\":{:.3},\"dur\":{:.3}}}",
                e.start.as_secs_f64() * 1e6,
                e.dur.as_secs_f64() * 1e6
            );
        }
        s.push_str("]}");
        s
    }
    /// Writes the Chrome-trace JSON to a file.
    pub fn write_chrome_trace(&self, path: impl AsRef<std::path::Path>) -> std::io::Result<()> {
        std::fs::write(path, self.chrome_trace_json())
    }
    /// A table of the `n` most expensive step names: count, total and mean time.
    pub fn top(&self, n: usize) -> String {
        let mut agg: HashMap<&str, (usize, Duration)> = HashMap::new();
        for e in &self.events {
            let a = agg.entry(&e.name).or_default();
            a.0 += 1;
            a.1 += e.dur;
        }
        let mut rows: Vec<_> = agg.into_iter().collect();
        rows.sort_by(|a, b| b.1 .1.cmp(&a.1 .1).then(a.0.cmp(b.0)));
        let mut s = format!(
            "{:<24} {:>8} {:>12} {:>12}\n",
            "op", "count", "total µs", "mean µs"
        );
        for (name, (count, total)) in rows.into_iter().take(n) {
            let t = total.as_secs_f64() * 1e6;
            let _ = writeln!(
                s,
                "{name:<24} {count:>8} {t:>12.1} {:>12.2}",
                t / count as f64
            );
        }
        s
    }
}
