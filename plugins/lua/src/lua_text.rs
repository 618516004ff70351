//! Lua values as gopher-lua's `String()` writes them: what krakend-lua
//! reads its arguments and table keys as.

use mlua::Value as LuaValue;

/// The text of a string, number or boolean (a whole number without a
/// fraction); `None` for other values.
pub fn scalar_text(value: &LuaValue) -> Option<String> {
    match value {
        LuaValue::String(s) => Some(s.to_string_lossy()),
        LuaValue::Integer(i) => Some(i.to_string()),
        LuaValue::Number(n) if n.fract() == 0.0 && n.abs() < 1e15 => Some(format!("{}", *n as i64)),
        LuaValue::Number(n) => Some(n.to_string()),
        LuaValue::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The text of any value: `nil`, or the type's name for a table or a
/// function.
pub fn text(value: &LuaValue) -> String {
    match value {
        LuaValue::Nil => "nil".to_owned(),
        other => scalar_text(other).unwrap_or_else(|| other.type_name().to_owned()),
    }
}
