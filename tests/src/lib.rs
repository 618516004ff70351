//! Helpers for Sepia's end-to-end tests: build the real artifacts, start the
//! real `sepia` binary, start real backends on loopback, talk HTTP to them.

pub mod artifacts;
pub mod backend;
pub mod client;
pub mod dns;
pub mod jose;
pub mod krakend_ce;
pub mod otlp;
pub mod prometheus;
pub mod redis;
pub mod sepia;
pub mod tls;

pub use backend::{Recorded, Reply, TestBackend};
pub use client::{get, post_status_early, request, Answer};
pub use sepia::{run_sepia, Sepia};
