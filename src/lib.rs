//! extpy: fetch, verify, build and lay out the External Python that the CEM component of
//! Sinch Contact Pro needs, and write the runbook that goes with it.
#![warn(unreachable_pub)]

pub(crate) mod audit;
pub(crate) mod cache;
pub mod commands;
pub mod config;
pub(crate) mod digest;
pub mod doctor;
pub mod error;
pub(crate) mod exit;
pub(crate) mod fetch;
pub(crate) mod fsio;
#[cfg(test)]
mod fuzz;
pub(crate) mod inputs;
pub(crate) mod layout;
pub(crate) mod limits;
pub(crate) mod lock;
pub mod mail;
pub(crate) mod manifest;
pub(crate) mod net;
pub(crate) mod parse;
pub mod report;
pub mod rollout;
pub(crate) mod source;
pub(crate) mod topology;
pub mod version;
pub(crate) mod wintext;

/// Runs `f` over `items` on `jobs` threads, keeping the input order in the result.
///
/// Items start in input order (each thread takes the next one as it becomes free), so a
/// caller puts first what should start first, such as the largest download. Downloads,
/// copies and hashing all go through here, so `--jobs` means the same everywhere.
pub fn parallel<T: Sync, R: Send>(
    jobs: usize,
    items: &[T],
    f: impl Fn(&T) -> R + Sync + Send,
) -> Vec<R> {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let threads = jobs.clamp(1, items.len().max(1));
    if threads == 1 {
        return items.iter().map(&f).collect();
    }
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<R>>> = items.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    let r = f(item);
                    if let Ok(mut slot) = slots[i].lock() {
                        *slot = Some(r);
                    }
                }
            });
        }
    });
    slots
        .into_iter()
        .map(|m| {
            m.into_inner()
                .ok()
                .flatten()
                .expect("every item ran: a panicking worker would have ended the scope")
        })
        .collect()
}
pub(crate) mod archive;
pub(crate) mod assemble;
pub(crate) mod bundle;
pub(crate) mod place;
pub mod runbook;

/// Threads for local work (hashing, extracting, copying): `--jobs`, but no more than the
/// machine has cores, since extra threads there only contend.
pub fn local_jobs(jobs: usize) -> usize {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    jobs.clamp(1, cores)
}
