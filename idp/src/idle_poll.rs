//! Polling before sleeping: when the runtime's worker runs out of work it first watches the
//! runtime's event queue for a short, adaptive window and only then sleeps.
//!
//! A sleep and the wake-up that ends it cost a round trip tens of microseconds on a virtual
//! machine (docs/performance.md, "The tenth round"), more than answering a token request. When
//! requests follow each other closely, as on a busy keep-alive connection, the next one usually
//! arrives within that time, and noticing it without having slept saves the whole wake-up.
//!
//! The window adapts as Linux's `haltpoll` cpuidle governor adapts its own: after an idle period
//! longer than the window but shorter than the maximum, the window grows (polling would have
//! caught it); after one longer than the maximum it halves, down to nothing. An idle server
//! therefore does not poll at all, a server under steady load from many connections rarely runs
//! out of work, and what polling costs is bounded by the window per idle period. At most one
//! worker polls at a time; the others sleep at once.
//!
//! The runtime does not expose its event queue, so [`IdlePoll::attach`] finds it: the one epoll
//! instance that building the runtime added to the process, duplicated with `pidfd_getfd`.
//! Polling it (`poll(2)` with a zero timeout) reports pending events without consuming them; the
//! runtime then collects them in its own `epoll_wait`, which returns at once. Anything that does
//! not go through that queue (a task woken from another thread while no worker sleeps) waits at
//! most one window.

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags};

/// The smallest window polling grows to from nothing.
const GROW_START: Duration = Duration::from_micros(10);

/// The window after an idle period of `idle`, given the current window and the maximum.
///
/// Grows (doubling, at least to [`GROW_START`]) when polling for the whole idle period would
/// have caught its end within the maximum; halves when the idle period outlasted the maximum,
/// to zero below [`GROW_START`]; otherwise (the end was caught within the window) unchanged.
pub fn next_window(window: Duration, idle: Duration, max: Duration) -> Duration {
    if idle > max {
        let half = window / 2;
        if half < GROW_START {
            Duration::ZERO
        } else {
            half
        }
    } else if idle > window {
        (window * 2).max(GROW_START).min(max)
    } else {
        window
    }
}

/// Shared by the runtime's park and unpark hooks.
pub struct IdlePoll {
    /// The runtime's event queue, set once the runtime is built.
    queue: OnceLock<OwnedFd>,
    max: Duration,
    window_ns: AtomicU64,
    caught: AtomicU64,
    /// The worker polling now or sleeping after its poll, and when it ran out of work.
    watcher: Mutex<Option<(ThreadId, Instant)>>,
}

impl IdlePoll {
    /// Builds the runtime with `builder` and hooks polling of at most `max` into it. The second
    /// value is the poller, or why there is none: `max` is zero, or the runtime's event queue
    /// cannot be found (for the log).
    pub fn attach(
        builder: &mut tokio::runtime::Builder,
        max: Duration,
    ) -> std::io::Result<(tokio::runtime::Runtime, Result<Arc<IdlePoll>, String>)> {
        if max.is_zero() {
            return Ok((builder.build()?, Err("turned off".to_owned())));
        }
        let before = event_queues();
        let poller = Arc::new(IdlePoll {
            queue: OnceLock::new(),
            max,
            window_ns: AtomicU64::new(0),
            caught: AtomicU64::new(0),
            watcher: Mutex::new(None),
        });
        let (park, unpark) = (poller.clone(), poller.clone());
        let runtime = builder
            .on_thread_park(move || park.before_park())
            .on_thread_unpark(move || unpark.after_unpark())
            .build()?;
        let found = match (before, event_queues()) {
            (Ok(before), Ok(after)) => {
                let new: Vec<i32> = after
                    .into_iter()
                    .filter(|fd| !before.contains(fd))
                    .collect();
                match one_instance(&new) {
                    Some(fd) => duplicate(fd).map_err(|e| format!("cannot duplicate it: {e}")),
                    None => Err(format!("{} new event queues, expected one", new.len())),
                }
            }
            (Err(e), _) | (_, Err(e)) => Err(format!("cannot list the open files: {e}")),
        };
        let status = found.map(|queue| {
            // Only this function sets the cell, once.
            let _ = poller.queue.set(queue);
            poller
        });
        Ok((runtime, status))
    }

    /// The current window.
    pub fn window(&self) -> Duration {
        Duration::from_nanos(self.window_ns.load(Ordering::Relaxed))
    }

    /// How many times polling saw an event before the window ended (the sleeps it saved).
    pub fn caught(&self) -> u64 {
        self.caught.load(Ordering::Relaxed)
    }

    fn before_park(&self) {
        let Some(queue) = self.queue.get() else {
            return;
        };
        let start = Instant::now();
        {
            let mut watcher = self.watcher.lock().unwrap_or_else(|e| e.into_inner());
            if watcher.is_some() {
                return;
            }
            *watcher = Some((std::thread::current().id(), start));
        }
        let window = self.window();
        while start.elapsed() < window {
            let mut fds = [PollFd::new(queue, PollFlags::IN)];
            if matches!(rustix::event::poll(&mut fds, Some(&Default::default())), Ok(n) if n > 0) {
                self.caught.fetch_add(1, Ordering::Relaxed);
                return;
            }
            std::hint::spin_loop();
        }
    }

    fn after_unpark(&self) {
        let started = {
            let mut watcher = self.watcher.lock().unwrap_or_else(|e| e.into_inner());
            match *watcher {
                Some((id, started)) if id == std::thread::current().id() => {
                    *watcher = None;
                    started
                }
                _ => return,
            }
        };
        let next = next_window(self.window(), started.elapsed(), self.max);
        self.window_ns.store(
            u64::try_from(next.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }
}

/// The file descriptors of the process's epoll instances.
fn event_queues() -> std::io::Result<Vec<i32>> {
    let mut fds = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd")? {
        let entry = entry?;
        let Ok(target) = std::fs::read_link(entry.path()) else {
            // The descriptor read_dir itself used, closed by now.
            continue;
        };
        if target.as_os_str() == "anon_inode:[eventpoll]"
            && let Some(fd) = entry.file_name().to_str().and_then(|n| n.parse().ok())
        {
            fds.push(fd);
        }
    }
    Ok(fds)
}

/// The one epoll instance behind `fds`, if they are all descriptors of one. The runtime keeps a
/// duplicate of its queue's descriptor, so building it adds two. Two descriptors of one instance
/// watch the same files; two instances never share theirs, since each watches its own waker.
fn one_instance(fds: &[i32]) -> Option<i32> {
    let watched = |fd: i32| -> Option<Vec<String>> {
        let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).ok()?;
        let mut tfds: Vec<String> = info
            .lines()
            .filter(|l| l.starts_with("tfd:"))
            .map(str::to_owned)
            .collect();
        tfds.sort();
        (!tfds.is_empty()).then_some(tfds)
    };
    let (&first, rest) = fds.split_first()?;
    let files = watched(first)?;
    rest.iter()
        .all(|&fd| watched(fd).as_ref() == Some(&files))
        .then_some(first)
}

/// A descriptor of our own for the process's descriptor `fd`.
#[cfg(target_os = "linux")]
fn duplicate(fd: i32) -> rustix::io::Result<OwnedFd> {
    let me = rustix::process::pidfd_open(
        rustix::process::getpid(),
        rustix::process::PidfdFlags::empty(),
    )?;
    rustix::process::pidfd_getfd(&me, fd, rustix::process::PidfdGetfdFlags::empty())
}

#[cfg(not(target_os = "linux"))]
fn duplicate(_fd: i32) -> rustix::io::Result<OwnedFd> {
    Err(rustix::io::Errno::NOSYS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    #[test]
    fn the_window_follows_the_idle_periods() {
        let max = us(200);
        // (window, idle, next window)
        let cases = [
            (us(0), us(5), us(10)),      // a short idle period starts polling
            (us(0), us(150), us(10)),    // any idle period below the maximum does
            (us(0), us(300), us(0)),     // a long one keeps it off
            (us(10), us(8), us(10)),     // caught within the window: unchanged
            (us(10), us(30), us(20)),    // missed, but below the maximum: doubled
            (us(160), us(190), us(200)), // doubling stops at the maximum
            (us(200), us(200), us(200)), // caught at the maximum
            (us(200), us(201), us(100)), // outlasted the maximum: halved
            (us(16), us(5_000), us(0)),  // halved below the start: off
            (us(20), us(5_000), us(10)), // halved to the start: still on
        ];
        for (window, idle, next) in cases {
            assert_eq!(
                next_window(window, idle, max),
                next,
                "window {window:?}, idle {idle:?}"
            );
        }
    }

    #[test]
    fn an_idle_server_stops_polling() {
        let max = us(100);
        let mut window = max;
        for _ in 0..4 {
            window = next_window(window, Duration::from_millis(20), max);
        }
        assert_eq!(window, Duration::ZERO);
    }
}
