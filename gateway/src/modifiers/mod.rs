//! Plugin modifiers bound to the places they serve: running their chains,
//! the threads blocking hooks run on, and the conversions between HTTP and
//! the ABI's plain data.

pub mod chain;
pub mod convert;
pub mod hook_pool;
