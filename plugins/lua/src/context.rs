//! `ctx.load()`: the client's request as `modifier/lua-endpoint` sees it,
//! before KrakenD's endpoint handler (krakend-lua's `router/gin/lua.go`):
//! gin's context over Go's `http.Request`.

use mlua::{MultiValue, UserData, UserDataMethods};
use sepia_plugin_api::{RString, RVec, Request, Tuple2};

use crate::{
    accessors::{self, arguments, needs_arguments, text},
    header_map::HeaderMap,
    query,
    request::split_url,
};

/// The client's request a script changes.
pub struct LuaContext {
    krakend2: bool,
    method: String,
    path: String,
    query: Vec<(String, String)>,
    query_changed: bool,
    /// gin's params: the names as the endpoint declares them.
    params: Vec<(String, String)>,
    headers: HeaderMap,
    body: RVec<u8>,
}

impl LuaContext {
    /// Takes `request`'s headers and body (moved, not copied, as the
    /// proxy's request does); [`LuaContext::apply`] gives them back.
    pub fn take(request: &mut Request, krakend2: bool) -> LuaContext {
        LuaContext {
            krakend2,
            method: request.method.to_string(),
            path: request.path.to_string(),
            query: query::parse(request.query.as_str()),
            query_changed: false,
            params: request
                .params
                .iter()
                .map(|p| (p.0.to_string(), p.1.to_string()))
                .collect(),
            headers: HeaderMap::new(std::mem::take(&mut request.headers)),
            body: std::mem::take(&mut request.body),
        }
    }

    /// Writes the script's changes back: the query, the params, the
    /// headers (`Host` too) and the body are what KrakenD's handler reads
    /// next; the path and method were routed already.
    pub fn apply(self, request: &mut Request) {
        if self.query_changed {
            request.query = RString::from(query::encode(&self.query));
        }
        let params: RVec<Tuple2<RString, RString>> = request
            .params
            .iter()
            .map(|p| {
                let value = self
                    .params
                    .iter()
                    .find(|(n, _)| n.as_str() == p.0.as_str())
                    .map_or(p.1.clone(), |(_, v)| RString::from(v.as_str()));
                Tuple2(p.0.clone(), value)
            })
            .collect();
        request.params = params;
        request.headers = self.headers.into_plugin();
        request.body = self.body;
    }

    fn url(&self) -> String {
        // Go's server-side URL: path and raw query.
        if self.query.is_empty() {
            self.path.clone()
        } else {
            format!("{}?{}", self.path, query::encode(&self.query))
        }
    }
}

impl UserData for LuaContext {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method_mut("method", |_, this, rest: MultiValue| {
            match arguments(rest).first() {
                None => Ok(Some(this.method.clone())),
                Some(value) => {
                    this.method = text(value);
                    Ok(None)
                }
            }
        });
        methods.add_method_mut("url", |_, this, rest: MultiValue| {
            match arguments(rest).first() {
                None => Ok(Some(this.url())),
                Some(value) => {
                    let url = text(value);
                    let (path, raw_query) = split_url(&url);
                    this.path = path.to_owned();
                    this.query = query::parse(raw_query);
                    this.query_changed = true;
                    Ok(None)
                }
            }
        });
        methods.add_method_mut("host", |_, this, rest: MultiValue| {
            match arguments(rest).first() {
                None => Ok(Some(
                    this.headers
                        .values("Host")
                        .first()
                        .cloned()
                        .unwrap_or_default(),
                )),
                Some(value) => {
                    this.headers.set("Host", vec![text(value)]);
                    Ok(None)
                }
            }
        });
        methods.add_method_mut("query", |_, this, rest: MultiValue| {
            let rest = arguments(rest);
            match rest.as_slice() {
                [] => Err(needs_arguments()),
                [name] => Ok(Some(query::first(&this.query, &text(name)).to_owned())),
                [name, value, ..] => {
                    query::set(&mut this.query, &text(name), &text(value));
                    this.query_changed = true;
                    Ok(None)
                }
            }
        });
        methods.add_method_mut("params", |lua, this, rest: MultiValue| {
            accessors::params(lua, &mut this.params, this.krakend2, rest)
        });
        methods.add_method_mut("headers", |lua, this, rest: MultiValue| {
            let rules = accessors::HeaderRules {
                whole_table: this.krakend2,
                as_written: false,
                nil_deletes: true,
            };
            accessors::headers(lua, &mut this.headers, rules, rest)
        });
        methods.add_method_mut("headerList", |lua, this, rest: MultiValue| {
            accessors::header_list(lua, &mut this.headers, rest)
        });
        methods.add_method_mut("body", |lua, this, rest: MultiValue| {
            accessors::body(lua, &mut this.body, rest)
        });
    }
}
