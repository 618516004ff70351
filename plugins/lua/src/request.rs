//! `request.load()`: the request of `modifier/lua-proxy` (an endpoint's,
//! before its backends are called) and of `modifier/lua-backend` (one
//! backend's), as krakend-lua's `proxy/request.go` shows lura's
//! `proxy.Request`.

use mlua::{MultiValue, UserData, UserDataMethods};
use sepia_plugin_api::{lura_param_name, ModifierScope, RString, RVec, Request, Tuple2};

use crate::{
    accessors::{self, arguments, text},
    header_map::HeaderMap,
    query,
};

/// The request a script changes.
#[derive(Debug)]
pub struct LuaRequest {
    scope: ModifierScope,
    krakend2: bool,
    method: String,
    /// A backend's path and query, the URL lura's load balancer built (its
    /// host stays the gateway's choice).
    path: String,
    raw_query: String,
    query: Option<Vec<(String, String)>>,
    /// `{param}` values under lura's names, in the endpoint's order.
    params: Vec<(String, String)>,
    headers: HeaderMap,
    body: RVec<u8>,
    url_changed: bool,
    method_changed: bool,
}

impl LuaRequest {
    /// Takes `request`'s headers and body (moved, not copied);
    /// [`LuaRequest::apply`] gives them back.
    pub fn take(request: &mut Request, scope: ModifierScope, krakend2: bool) -> LuaRequest {
        LuaRequest {
            scope,
            krakend2,
            method: request.method.to_string(),
            path: request.path.to_string(),
            raw_query: request.query.to_string(),
            query: None,
            params: request
                .params
                .iter()
                .map(|p| (lura_param_name(p.0.as_str()), p.1.to_string()))
                .collect(),
            headers: HeaderMap::new(std::mem::take(&mut request.headers)),
            body: std::mem::take(&mut request.body),
            url_changed: false,
            method_changed: false,
        }
    }

    /// Writes what the script changed back into `request`, where lura would
    /// use it: at an endpoint the query, the params, the headers and the
    /// body (lura then sets each backend's method and path from its own
    /// settings); at a backend also the method and the URL.
    pub fn apply(self, request: &mut Request) {
        if let Some(pairs) = &self.query {
            if self.scope == ModifierScope::Endpoint {
                request.query = RString::from(query::encode(pairs));
            }
        }
        if self.scope == ModifierScope::Backend {
            if self.method_changed {
                request.method = RString::from(self.method.to_ascii_uppercase());
            }
            if self.url_changed {
                request.path = RString::from(self.path.as_str());
                request.query = RString::from(self.raw_query.as_str());
            }
        }
        let names: Vec<String> = request
            .params
            .iter()
            .map(|p| lura_param_name(p.0.as_str()))
            .collect();
        let params: RVec<Tuple2<RString, RString>> = request
            .params
            .iter()
            .zip(names)
            .map(|(p, lura)| {
                let value = self
                    .params
                    .iter()
                    .find(|(n, _)| *n == lura)
                    .map_or(p.1.clone(), |(_, v)| RString::from(v.as_str()));
                Tuple2(p.0.clone(), value)
            })
            .collect();
        request.params = params;
        request.headers = self.headers.into_plugin();
        request.body = self.body;
    }

    fn query_pairs(&mut self) -> &mut Vec<(String, String)> {
        let raw = &self.raw_query;
        self.query.get_or_insert_with(|| query::parse(raw))
    }

    /// lura's `URL`: none yet at an endpoint; at a backend its path and
    /// query.
    fn url(&self) -> String {
        match self.scope {
            ModifierScope::Endpoint => String::new(),
            ModifierScope::Backend if self.raw_query.is_empty() => self.path.clone(),
            ModifierScope::Backend => format!("{}?{}", self.path, self.raw_query),
        }
    }

    fn set_url(&mut self, url: &str) {
        if self.scope == ModifierScope::Endpoint {
            // lura's load balancer builds the URL after this.
            return;
        }
        let (path, query) = split_url(url);
        // Go sends an empty path as `/`.
        self.path = if path.is_empty() { "/" } else { path }.to_owned();
        self.raw_query = query.to_owned();
        self.query = None;
        self.url_changed = true;
    }
}

/// A URL's path and query: an absolute URL's scheme and host are dropped
/// (the gateway keeps the backend's host), a fragment too.
pub fn split_url(url: &str) -> (&str, &str) {
    let url = url.split_once('#').map_or(url, |(u, _)| u);
    let rest = match url.split_once("://") {
        Some((_, after)) => after.find('/').map_or("", |i| &after[i..]),
        None => url,
    };
    rest.split_once('?').unwrap_or((rest, ""))
}

impl UserData for LuaRequest {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method_mut("method", |_, this, rest: MultiValue| {
            match arguments(rest).first() {
                None => Ok(Some(this.method.clone())),
                Some(value) => {
                    this.method = text(value);
                    this.method_changed = true;
                    Ok(None)
                }
            }
        });
        methods.add_method_mut("path", |_, this, rest: MultiValue| {
            match arguments(rest).first() {
                None => Ok(Some(match this.scope {
                    // lura sets the path from each backend's pattern later.
                    ModifierScope::Endpoint => String::new(),
                    ModifierScope::Backend => this.path.clone(),
                })),
                // The URL is already built from it (at a backend) or is
                // built from the backend's pattern (at an endpoint).
                Some(_) => Ok(None),
            }
        });
        methods.add_method_mut("query", |_, this, rest: MultiValue| {
            match arguments(rest).first() {
                None => Ok(Some(query::encode(this.query_pairs()))),
                Some(value) => {
                    this.query = Some(query::parse(&text(value)));
                    Ok(None)
                }
            }
        });
        methods.add_method_mut("url", |_, this, rest: MultiValue| {
            match arguments(rest).first() {
                None => Ok(Some(this.url())),
                Some(value) => {
                    this.set_url(&text(value));
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
                // krakend-lua 1.4 looks the name up as written.
                as_written: !this.krakend2,
                nil_deletes: this.krakend2,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_split_into_path_and_query() {
        assert_eq!(split_url("http://host:1/a/b?x=1#f"), ("/a/b", "x=1"));
        assert_eq!(split_url("/collection/1"), ("/collection/1", ""));
        assert_eq!(split_url("http://host"), ("", ""));
    }
}
