//! The gateway's side towards backends: the pooled HTTP clients every backend
//! call and every plugin fetch goes through, and their TLS settings. It
//! knows nothing of endpoints or plugins, so both can use it.

pub mod backend_client;
pub mod http1_pool;
pub mod tls;
