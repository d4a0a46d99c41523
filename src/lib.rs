//! extpy: fetch, verify, build and lay out the External Python that the CEM component of
//! Sinch Contact Pro needs, and write the runbook that goes with it.
//!
//! The crate is in layers, one folder each; a layer uses only the layers above it in this
//! list, and no files use each other in a circle, inside a folder either (a folder's `mod.rs` and
//! its children included): what several files need lives in a file below them all, such as
//! `assemble/contents.rs`, `doctor/target.rs`, `lock/error.rs` or `runbook/plan.rs`.
//! `scripts/module-graph.py` checks all three in CI, reading this list for the order:
//!
//! - `base`: exit codes, parse helpers, the reporter, Windows console text; uses nothing.
//! - `mechanism`: digest, fsio, limits, net, cache, archive, place; uses `base`.
//! - `model`: manifest, topology, mail settings; uses `mechanism` and `base`.
//! - `job`: source, fetch, assemble, layout, bundle, doctor, lock, audit, rollout, runbook,
//!   mail check; uses `model`, `mechanism` and `base`.
//! - `app`: config, inputs, error, commands, version; uses every layer.
//! - the binary (`main.rs`, with `manual.rs` for help, man pages and completions) uses
//!   `app` and the few public types it renders.
#![warn(unreachable_pub)]

pub mod app;
pub mod base;
#[cfg(test)]
mod fuzz;
pub mod job;
pub(crate) mod mechanism;
pub mod model;

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

/// Threads for local work (hashing, extracting, copying): `--jobs`, but no more than the
/// machine has cores, since extra threads there only contend.
pub fn local_jobs(jobs: usize) -> usize {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    jobs.clamp(1, cores)
}
