//! `response.load()`: an answer as krakend-lua's `proxy/response.go` shows
//! lura's `proxy.Response`: its data (the decoded JSON), status, headers,
//! completeness, and for an answer that is not JSON data its raw body.

use std::cell::OnceCell;

use mlua::{MultiValue, UserData, UserDataMethods, Value as LuaValue};
use sepia_plugin_api::{BodyLayout, RVec, Response};
use serde_json::{Map, Value};

use crate::{
    accessors::{self, arguments, text},
    data::{self, LuaTable, Tree},
    header_map::HeaderMap,
};

/// The answer a script changes.
pub struct LuaResponse {
    status: u16,
    complete: bool,
    headers: HeaderMap,
    /// The body, when the answer is not a JSON object (a `no-op`
    /// endpoint's): lura keeps such a body as it came, and its data empty.
    raw: Option<Vec<u8>>,
    /// The JSON object body, read when the script first asks for `data()`.
    json: Vec<u8>,
    data: OnceCell<Tree>,
}

impl LuaResponse {
    /// `response`, whose body is data when the gateway says it is a JSON
    /// object or it reads as one.
    pub fn new(response: &Response, layout: &BodyLayout) -> LuaResponse {
        let is_object = layout.canonical_json
            || serde_json::from_slice::<Value>(&response.body).is_ok_and(|v| v.is_object());
        let body = response.body.to_vec();
        let (raw, json) = if is_object {
            (None, body)
        } else {
            (Some(body), Vec::new())
        };
        LuaResponse {
            status: response.status,
            complete: response.complete,
            headers: HeaderMap::from_plugin(&response.headers),
            raw,
            json,
            data: OnceCell::new(),
        }
    }

    /// lura's empty `proxy.Response{}`, for `skip_next`: no data, status 0,
    /// incomplete.
    pub fn empty() -> LuaResponse {
        LuaResponse {
            status: 0,
            complete: false,
            headers: HeaderMap::default(),
            raw: None,
            json: Vec::new(),
            data: OnceCell::new(),
        }
    }

    fn tree(&self) -> &Tree {
        self.data.get_or_init(|| {
            let value = match serde_json::from_slice::<Value>(&self.json) {
                Ok(value @ Value::Object(_)) => value,
                _ => Value::Object(Map::new()),
            };
            data::tree(value)
        })
    }

    /// Writes the script's changes into `response`: the data re-encoded as
    /// Go encodes it (when the script read it), or the raw body.
    pub fn apply(self, response: &mut Response) {
        response.status = self.status;
        response.complete = self.complete;
        response.headers = self.headers.into_plugin();
        if let Some(raw) = self.raw {
            response.body = RVec::from(raw);
        } else if let Some(tree) = self.data.get() {
            response.body = RVec::from(sepia_json::to_vec(&tree.borrow()));
        }
    }

    /// The answer a `skip_next` script gives: its data as JSON, 200 unless
    /// it set a status.
    pub fn into_answer(self) -> Response {
        let mut out = Response::json(200, Vec::new());
        out.complete = false;
        self.apply(&mut out);
        if out.body.is_empty() {
            out.body = RVec::from(b"{}".to_vec());
        }
        if out.status == 0 {
            out.status = 200;
        }
        if out.header("content-type").is_none() {
            out.set_header("content-type", "application/json; charset=utf-8");
        }
        out
    }
}

impl UserData for LuaResponse {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method_mut("isComplete", |_, this, rest: MultiValue| {
            match arguments(rest).first() {
                None => Ok(Some(this.complete)),
                Some(value) => {
                    this.complete = !matches!(value, LuaValue::Nil | LuaValue::Boolean(false));
                    Ok(None)
                }
            }
        });
        methods.add_method_mut("statusCode", |_, this, rest: MultiValue| {
            match arguments(rest).first() {
                None => Ok(Some(f64::from(this.status))),
                Some(value) => {
                    let code = match value {
                        LuaValue::Integer(i) => *i as f64,
                        LuaValue::Number(n) => *n,
                        other => text(other).parse().unwrap_or(0.0),
                    };
                    this.status = code.clamp(0.0, 999.0) as u16;
                    Ok(None)
                }
            }
        });
        methods.add_method("data", |lua, this, ()| {
            lua.create_userdata(LuaTable::root(this.tree()))
        });
        methods.add_method_mut("headers", |lua, this, rest: MultiValue| {
            let rules = accessors::HeaderRules {
                whole_table: true,
                // krakend-lua reads an answer's header under the name
                // as written, and writes it under its canonical name.
                as_written: true,
                nil_deletes: true,
            };
            accessors::headers(lua, &mut this.headers, rules, rest)
        });
        methods.add_method_mut("headerList", |lua, this, rest: MultiValue| {
            accessors::header_list(lua, &mut this.headers, rest)
        });
        methods.add_method_mut("body", |lua, this, rest: MultiValue| {
            match arguments(rest).first() {
                // Data answers have no body of their own in lura.
                None => Ok(LuaValue::String(
                    lua.create_string(this.raw.as_deref().unwrap_or_default())?,
                )),
                Some(value) => {
                    if let Some(raw) = this.raw.as_mut() {
                        *raw = accessors::bytes(value);
                    }
                    Ok(LuaValue::Nil)
                }
            }
        });
    }
}
