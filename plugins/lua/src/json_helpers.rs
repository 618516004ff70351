//! `json.marshal(value)` and `json.unmarshal(text)`: the JSON helpers of
//! KrakenD's Lua (its Enterprise edition; KrakenD CE scripts bring their
//! own, such as the CE suite's `json.lua`, and a script's own `json`
//! global replaces these). JSON is written as Go writes it, keys sorted.

use mlua::{Lua, LuaSerdeExt, Value as LuaValue};
use serde_json::Value;

/// Registers the global `json` table.
pub fn register(lua: &Lua) -> mlua::Result<()> {
    let table = lua.create_table()?;
    table.set(
        "marshal",
        lua.create_function(|lua, value: LuaValue| {
            let options = mlua::DeserializeOptions::new()
                .deny_unsupported_types(false)
                .deny_recursive_tables(true);
            let json: Value = lua.from_value_with(value, options)?;
            lua.create_string(sepia_json::to_vec(&json))
        })?,
    )?;
    table.set(
        "unmarshal",
        lua.create_function(|lua, text: mlua::String| {
            let json: Value = serde_json::from_slice(&text.as_bytes())
                .map_err(|e| mlua::Error::runtime(format!("json.unmarshal: {e}")))?;
            to_lua(lua, &json)
        })?,
    )?;
    lua.globals().set("json", table)
}

/// JSON as plain Lua values: objects and arrays as tables (arrays from 1),
/// `null` as `nil`.
pub fn to_lua(lua: &Lua, value: &Value) -> mlua::Result<LuaValue> {
    Ok(match value {
        Value::Null => LuaValue::Nil,
        Value::Bool(b) => LuaValue::Boolean(*b),
        Value::Number(n) => LuaValue::Number(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => LuaValue::String(lua.create_string(s)?),
        Value::Array(items) => {
            let table = lua.create_table_with_capacity(items.len(), 0)?;
            for (i, item) in items.iter().enumerate() {
                table.raw_set(i + 1, to_lua(lua, item)?)?;
            }
            LuaValue::Table(table)
        }
        Value::Object(members) => {
            let table = lua.create_table_with_capacity(0, members.len())?;
            for (name, item) in members {
                table.raw_set(name.as_str(), to_lua(lua, item)?)?;
            }
            LuaValue::Table(table)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_go_to_json_and_back() {
        let lua = Lua::new();
        register(&lua).unwrap();
        let text: String = lua
            .load(r#"return json.marshal({b = {1, 2, "x"}, a = true, n = 1.5})"#)
            .eval()
            .unwrap();
        assert_eq!(text, r#"{"a":true,"b":[1,2,"x"],"n":1.5}"#);
        let found: String = lua
            .load(
                r#"local t = json.unmarshal('{"user":{"tags":["p","q"]}}') return t.user.tags[2]"#,
            )
            .eval()
            .unwrap();
        assert_eq!(found, "q");
        assert!(lua.load("json.unmarshal('{')").exec().is_err());
    }
}
