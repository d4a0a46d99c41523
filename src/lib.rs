//! extpy: fetch, verify, build and lay out the External Python that the CEM component of
//! Sinch Contact Pro needs, and write the runbook that goes with it.

pub mod cache;
pub mod commands;
pub mod config;
pub mod digest;
pub mod doctor;
pub mod error;
pub mod fetch;
pub mod layout;
pub mod mail;
pub mod manifest;
pub mod net;
pub mod report;
pub mod rollout;
pub mod source;
pub mod topology;
pub mod wintext;

/// Runs `f` over `items` on `jobs` threads, keeping the input order in the result.
///
/// Downloads, copies and hashing all go through here, so `--jobs` means the same everywhere.
pub fn parallel<T: Sync, R: Send>(
    jobs: usize,
    items: &[T],
    f: impl Fn(&T) -> R + Sync + Send,
) -> Vec<R> {
    use rayon::prelude::*;
    let run = || items.par_iter().map(&f).collect();
    match rayon::ThreadPoolBuilder::new()
        .num_threads(jobs.max(1))
        .build()
    {
        Ok(pool) => pool.install(run),
        Err(_) => items.iter().map(&f).collect(),
    }
}
pub mod archive;
pub mod assemble;
pub mod bundle;
pub mod place;
pub mod runbook;

/// Threads for local work (hashing, extracting, copying): `--jobs`, but no more than the
/// machine has cores, since extra threads there only contend.
pub fn local_jobs(jobs: usize) -> usize {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    jobs.clamp(1, cores)
}
