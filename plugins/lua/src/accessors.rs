//! What the request, response and context objects share: reading the
//! arguments as gopher-lua reads them, and the accessors whose rules are
//! the same on each (`params`, `headerList`, `body`).

use mlua::{AnyUserData, Lua, MultiValue, Value as LuaValue};
use sepia_plugin_api::RVec;
use serde_json::{Map, Value};

use crate::{
    data::{self, LuaList, LuaTable},
    header_map::HeaderMap,
};

/// The arguments after `self`.
pub fn arguments(values: MultiValue) -> Vec<LuaValue> {
    values.into_iter().collect()
}

pub use crate::lua_text::text;

pub fn needs_arguments() -> mlua::Error {
    mlua::Error::runtime("need arguments")
}

/// The values of a `luaList` argument, as header values.
pub fn list_values(value: &LuaValue) -> mlua::Result<Vec<String>> {
    let invalid = || mlua::Error::runtime("invalid header value, must be a luaList");
    let LuaValue::UserData(data) = value else {
        return Err(invalid());
    };
    if !data.is::<LuaList>() {
        return Err(invalid());
    }
    match data::from_lua(value)? {
        Some(Value::Array(items)) => Ok(items
            .iter()
            .map(|item| match item {
                Value::String(s) => s.clone(),
                other => sepia_json::to_string(other),
            })
            .collect()),
        _ => Err(invalid()),
    }
}

/// A `luaList` of these values.
pub fn list_of(lua: &Lua, values: &[String]) -> mlua::Result<AnyUserData> {
    let items = values.iter().cloned().map(Value::String).collect();
    lua.create_userdata(LuaList::root(&data::tree(Value::Array(items))))
}

/// A `luaTable` of these pairs.
pub fn table_of(lua: &Lua, pairs: &[(String, String)]) -> mlua::Result<AnyUserData> {
    let map: Map<String, Value> = pairs
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    lua.create_userdata(LuaTable::root(&data::tree(Value::Object(map))))
}

/// `params()` (a `luaTable`, in krakend-lua 2 only), `params(name)`,
/// `params(name, value)`.
pub fn params(
    lua: &Lua,
    params: &mut Vec<(String, String)>,
    krakend2: bool,
    rest: MultiValue,
) -> mlua::Result<LuaValue> {
    let rest = arguments(rest);
    match rest.as_slice() {
        [] if krakend2 => Ok(LuaValue::UserData(table_of(lua, params)?)),
        [] => Err(needs_arguments()),
        [name] => {
            let name = text(name);
            let value = params
                .iter()
                .find(|(n, _)| *n == name)
                .map_or("", |(_, v)| v.as_str());
            Ok(LuaValue::String(lua.create_string(value)?))
        }
        [name, value, ..] => {
            let (name, value) = (text(name), text(value));
            match params.iter_mut().find(|(n, _)| *n == name) {
                Some((_, old)) => *old = value,
                None => params.push((name, value)),
            }
            Ok(LuaValue::Nil)
        }
    }
}

/// How one object's `headers` reads and writes.
#[derive(Debug, Clone, Copy)]
pub struct HeaderRules {
    /// `headers()` gives every header as a table (else it needs a name).
    pub whole_table: bool,
    /// `headers(name)` looks the name up as written, as a Go map lookup
    /// does (else in any case).
    pub as_written: bool,
    /// `headers(name, nil)` deletes the header (else it sets "nil").
    pub nil_deletes: bool,
}

/// `headers()`, `headers(name)` (its first value, or empty), and
/// `headers(name, value)`.
pub fn headers(
    lua: &Lua,
    headers: &mut HeaderMap,
    rules: HeaderRules,
    rest: MultiValue,
) -> mlua::Result<LuaValue> {
    let rest = arguments(rest);
    match rest.as_slice() {
        [] if rules.whole_table => header_table(lua, headers),
        [] => Err(needs_arguments()),
        [name] => {
            let name = text(name);
            let values = if rules.as_written {
                headers.exact(&name)
            } else {
                headers.values(&name)
            };
            Ok(LuaValue::String(lua.create_string(
                values.first().map_or("", |s| s.as_str()),
            )?))
        }
        [name, LuaValue::Nil, ..] if rules.nil_deletes => {
            headers.delete(&text(name));
            Ok(LuaValue::Nil)
        }
        [name, value, ..] => {
            headers.set(&text(name), vec![text(value)]);
            Ok(LuaValue::Nil)
        }
    }
}

/// `headerList(name)`, a `luaList`; `headerList(name, list)`.
pub fn header_list(lua: &Lua, headers: &mut HeaderMap, rest: MultiValue) -> mlua::Result<LuaValue> {
    let rest = arguments(rest);
    match rest.as_slice() {
        [] => Err(needs_arguments()),
        [name] => Ok(LuaValue::UserData(list_of(
            lua,
            &headers.values(&text(name)),
        )?)),
        [name, list, ..] => {
            let values = list_values(list)?;
            headers.set(&text(name), values);
            Ok(LuaValue::Nil)
        }
    }
}

/// `headers()`, every header as a `luaTable` of lists.
fn header_table(lua: &Lua, headers: &HeaderMap) -> mlua::Result<LuaValue> {
    Ok(LuaValue::UserData(lua.create_userdata(LuaTable::root(
        &data::tree(headers.to_json()),
    ))?))
}

/// `body()` and `body(text)`.
pub fn body(lua: &Lua, body: &mut RVec<u8>, rest: MultiValue) -> mlua::Result<LuaValue> {
    match arguments(rest).first() {
        None => Ok(LuaValue::String(lua.create_string(body.as_slice())?)),
        Some(value) => {
            *body = RVec::from(bytes(value));
            Ok(LuaValue::Nil)
        }
    }
}

/// An argument's bytes: a Lua string as it is, anything else as its text.
pub fn bytes(value: &LuaValue) -> Vec<u8> {
    match value {
        LuaValue::String(s) => s.as_bytes().to_vec(),
        other => text(other).into_bytes(),
    }
}
