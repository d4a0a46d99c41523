//! `extpy mail check`: the SC OAuth mail settings of a topology (`crate::model::mail`) tried
//! live: token, IMAP and SMTP logins, and verdicts with fixes.

pub mod check;
pub(crate) mod jwt;
pub(crate) mod render;
pub(crate) mod runtime;
pub(crate) mod token;
pub(crate) mod verdict;
pub(crate) mod wire;
