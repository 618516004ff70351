//! The proxy path: from a matched endpoint to the client's response.

pub mod decode;
pub mod forwarding;
pub mod hook_pool;
pub mod hooks;
pub mod merge;
pub mod pipeline;
pub mod sequence;
pub mod shaping;
pub mod static_data;
pub mod url_template;
