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

/// The answer a script changes. Its body and headers are moved in and out,
/// never copied, and read only when the script asks.
pub struct LuaResponse {
    status: u16,
    complete: bool,
    headers: HeaderMap,
    body: RVec<u8>,
    /// Whether the body is data (a JSON object). A body that is not (a
    /// `no-op` endpoint's) lura keeps as it came, with empty data.
    is_data: bool,
    /// The data, read from the body when the script first asks for it.
    data: OnceCell<Tree>,
}

impl LuaResponse {
    /// Takes `response`'s headers and body; [`LuaResponse::apply`] gives
    /// them back. The body is data when the gateway says it is a JSON
    /// object, or it starts as one.
    pub fn take(response: &mut Response, layout: &BodyLayout) -> LuaResponse {
        let body = std::mem::take(&mut response.body);
        let is_data = layout.canonical_json
            || body
                .iter()
                .find(|b| !b.is_ascii_whitespace())
                .is_some_and(|b| *b == b'{');
        LuaResponse {
            status: response.status,
            complete: response.complete,
            headers: HeaderMap::new(std::mem::take(&mut response.headers)),
            body,
            is_data,
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
            body: RVec::new(),
            is_data: true,
            data: OnceCell::new(),
        }
    }

    fn tree(&self) -> &Tree {
        self.data.get_or_init(|| {
            let value = match serde_json::from_slice::<Value>(&self.body) {
                Ok(value @ Value::Object(_)) if self.is_data => value,
                _ => Value::Object(Map::new()),
            };
            data::tree(value)
        })
    }

    /// Writes the script's changes into `response`: the data re-encoded as
    /// Go encodes it when the script read it, else the body as it was (or
    /// as the script set a raw body).
    pub fn apply(self, response: &mut Response) {
        response.status = self.status;
        response.complete = self.complete;
        response.headers = self.headers.into_plugin();
        response.body = match self.data.get() {
            Some(tree) if self.is_data => RVec::from(sepia_json::to_vec(&tree.borrow())),
            _ => self.body,
        };
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
                None if this.is_data => Ok(LuaValue::String(lua.create_string("")?)),
                None => Ok(LuaValue::String(lua.create_string(this.body.as_slice())?)),
                Some(value) => {
                    if !this.is_data {
                        this.body = RVec::from(accessors::bytes(value));
                    }
                    Ok(LuaValue::Nil)
                }
            }
        });
    }
}
