//! The JSON Schema validator: KrakenD's `validation/json-schema`
//! (`github.com/devopsfaith/krakend-jsonschema` in version-2 files) as a
//! Sepia plugin. The namespace's value is the schema itself; a request whose
//! body does not validate is refused before any backend is called.
//!
//! ```json
//! "extra_config": {
//!   "validation/json-schema": {
//!     "type": "object", "required": ["user"],
//!     "properties": {"user": {"type": "string", "minLength": 3}}
//!   }
//! }
//! ```
//!
//! What a client sees follows the file's generation (see `schema.rs`); a
//! schema that does not compile stops start-up, where KrakenD logs it and
//! serves the endpoint unvalidated.

// A plugin keeps its own allocator (ABI types free memory where it was
// allocated).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod report;
mod schema;

use sepia_plugin_api::{export_plugin, EndpointInfo, Modifier, Plugin, PluginError};

struct JsonSchemaPlugin;

impl Plugin for JsonSchemaPlugin {
    const NAME: &'static str = "json-schema";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const NAMESPACES: &'static [&'static str] = &["validation/json-schema"];

    fn new_modifier(
        _namespace: &str,
        config_json: &str,
        _endpoint: &EndpointInfo,
    ) -> Result<Box<dyn Modifier>, PluginError> {
        let version = sepia_plugin_api::host().map_or(3, |h| h.config_version());
        let validator =
            schema::BodyValidator::compile(config_json, version).map_err(PluginError::config)?;
        Ok(Box::new(validator))
    }
}

export_plugin!(JsonSchemaPlugin);
