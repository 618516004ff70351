//! `luaTable`, `luaList` and `luaNil`: krakend-lua's views of JSON data
//! (a response's `data()`, a request's `params()`...), with its rules for
//! turning Lua values into JSON and back (`decorator/luatable.go`,
//! `lualist.go`, `types.go`).
//!
//! A view is a path into a shared tree, so `data:get("user"):set("x", 1)`
//! changes the response, as Go's maps share their contents.

use std::{cell::RefCell, rc::Rc};

use mlua::{AnyUserData, Lua, MultiValue, UserData, UserDataMethods, Value as LuaValue};
use serde_json::{Map, Value};

use crate::lua_text::{self, scalar_text};

/// A tree of JSON data the script works on.
pub type Tree = Rc<RefCell<Value>>;

/// A new tree holding `value`.
pub fn tree(value: Value) -> Tree {
    Rc::new(RefCell::new(value))
}

#[derive(Debug, Clone)]
enum Step {
    Key(String),
    Index(usize),
}

/// A place in a tree.
#[derive(Debug, Clone)]
struct Node {
    root: Tree,
    path: Vec<Step>,
}

impl Node {
    fn child(&self, step: Step) -> Node {
        let mut path = self.path.clone();
        path.push(step);
        Node {
            root: self.root.clone(),
            path,
        }
    }

    /// Runs `f` on the value at this place; `None` once it is gone (a
    /// parent was deleted or replaced).
    fn with<R>(&self, f: impl FnOnce(&mut Value) -> R) -> Option<R> {
        let mut root = self.root.borrow_mut();
        let mut here: &mut Value = &mut root;
        for step in &self.path {
            here = match (here, step) {
                (Value::Object(map), Step::Key(key)) => map.get_mut(key)?,
                (Value::Array(items), Step::Index(i)) => items.get_mut(*i)?,
                _ => return None,
            };
        }
        Some(f(here))
    }
}

/// A JSON object, as `luaTable`.
#[derive(Debug, Clone)]
pub struct LuaTable(Node);

/// A JSON array, as `luaList` (indexed from 0, as in Go).
#[derive(Debug, Clone)]
pub struct LuaList(Node);

/// A JSON `null`, as `luaNil`: a value that is there and empty, unlike a
/// missing key, which reads as Lua's `nil`.
#[derive(Debug, Clone, Copy)]
pub struct LuaNil;

impl LuaTable {
    /// A view of the whole tree, which holds an object.
    pub fn root(tree: &Tree) -> LuaTable {
        LuaTable(Node {
            root: tree.clone(),
            path: Vec::new(),
        })
    }

    /// A new, empty object of its own.
    pub fn empty() -> LuaTable {
        LuaTable::root(&tree(Value::Object(Map::new())))
    }

    fn object<R>(&self, f: impl FnOnce(&mut Map<String, Value>) -> R) -> mlua::Result<R> {
        self.0
            .with(|value| match value {
                Value::Object(map) => Some(f(map)),
                _ => None,
            })
            .flatten()
            .ok_or_else(|| mlua::Error::runtime("the luaTable's data is gone"))
    }
}

impl LuaList {
    /// A view of the whole tree, which holds an array.
    pub fn root(tree: &Tree) -> LuaList {
        LuaList(Node {
            root: tree.clone(),
            path: Vec::new(),
        })
    }

    fn items<R>(&self, f: impl FnOnce(&mut Vec<Value>) -> R) -> mlua::Result<R> {
        self.0
            .with(|value| match value {
                Value::Array(items) => Some(f(items)),
                _ => None,
            })
            .flatten()
            .ok_or_else(|| mlua::Error::runtime("the luaList's data is gone"))
    }
}

/// What `get` hands Lua for the value at `node` (krakend-lua's `tableGet`):
/// text, numbers and booleans as Lua's own, objects and arrays as views,
/// `null` as `luaNil`.
fn to_lua(lua: &Lua, node: Node, value: &Value) -> mlua::Result<LuaValue> {
    Ok(match value {
        Value::Null => LuaValue::UserData(lua.create_userdata(LuaNil)?),
        Value::Bool(b) => LuaValue::Boolean(*b),
        Value::Number(n) => LuaValue::Number(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => LuaValue::String(lua.create_string(s)?),
        Value::Array(_) => LuaValue::UserData(lua.create_userdata(LuaList(node))?),
        Value::Object(_) => LuaValue::UserData(lua.create_userdata(LuaTable(node))?),
    })
}

/// A Lua number as the JSON number Go writes for the `float64` it is.
fn float(f: f64) -> Value {
    sepia_json::float64_number(f).map_or(Value::Null, Value::Number)
}

/// The JSON `set` stores for a Lua value (krakend-lua's `tableSet`):
/// `None` for what it leaves alone (`nil`, functions...). A Lua table
/// becomes an object keyed by its keys' text, even when it is a list.
pub fn from_lua(value: &LuaValue) -> mlua::Result<Option<Value>> {
    Ok(match value {
        LuaValue::String(s) => Some(Value::String(s.to_string_lossy())),
        LuaValue::Number(n) => Some(float(*n)),
        LuaValue::Integer(i) => Some(Value::from(*i)),
        LuaValue::Boolean(b) => Some(Value::Bool(*b)),
        LuaValue::Table(table) => Some(Value::Object(table_members(table)?)),
        LuaValue::UserData(data) => userdata_value(data),
        _ => None,
    })
}

/// The data a view holds, copied; `luaNil`'s `null`.
fn userdata_value(data: &AnyUserData) -> Option<Value> {
    if data.is::<LuaNil>() {
        return Some(Value::Null);
    }
    if let Ok(table) = data.borrow::<LuaTable>() {
        return table.0.with(|v| v.clone());
    }
    if let Ok(list) = data.borrow::<LuaList>() {
        return list.0.with(|v| v.clone());
    }
    None
}

/// A Lua table's members as krakend-lua's `ParseToTable` reads them.
fn table_members(table: &mlua::Table) -> mlua::Result<Map<String, Value>> {
    let mut out = Map::new();
    for pair in table.pairs::<LuaValue, LuaValue>() {
        let (key, value) = pair?;
        let Some(key) = scalar_text(&key) else {
            continue;
        };
        let converted = match &value {
            LuaValue::String(s) => Value::String(s.to_string_lossy()),
            LuaValue::Boolean(b) => Value::Bool(*b),
            LuaValue::Integer(i) => Value::from(*i),
            // Whole numbers are Go ints here, others float64s.
            LuaValue::Number(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => Value::from(*n as i64),
            LuaValue::Number(n) => float(*n),
            LuaValue::UserData(data) => match userdata_value(data) {
                Some(v) => v,
                None => continue,
            },
            LuaValue::Table(inner) => as_list(table_members(inner)?),
            _ => continue,
        };
        out.insert(key, converted);
    }
    Ok(out)
}

/// krakend-lua's `tryConvertToSlice`: a nested table whose keys are all
/// integers is a list, in key order (gaps close up; an empty table is a nil
/// slice, which Go writes as `null`).
fn as_list(map: Map<String, Value>) -> Value {
    if map.is_empty() {
        return Value::Null;
    }
    if !map.keys().all(|k| k.parse::<i64>().is_ok()) {
        return Value::Object(map);
    }
    let mut keyed: Vec<(i64, Value)> = map
        .into_iter()
        .filter_map(|(k, v)| k.parse::<i64>().ok().map(|n| (n, v)))
        .collect();
    keyed.sort_by_key(|(n, _)| *n);
    Value::Array(keyed.into_iter().map(|(_, v)| v).collect())
}

/// The method arguments after `self`, as a list.
fn args(values: MultiValue) -> Vec<LuaValue> {
    values.into_iter().collect()
}

fn needs_arguments() -> mlua::Error {
    mlua::Error::runtime("need arguments")
}

/// A Lua number as a list index, as Go's `int(...)` truncates it.
fn index_of(value: &LuaValue) -> Option<i64> {
    match value {
        LuaValue::Integer(i) => Some(*i),
        LuaValue::Number(n) => Some(n.trunc() as i64),
        LuaValue::String(s) => s
            .to_str()
            .ok()?
            .trim()
            .parse::<f64>()
            .ok()
            .map(|n| n as i64),
        _ => None,
    }
}

impl UserData for LuaTable {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method("get", |lua, this, rest: MultiValue| {
            let rest = args(rest);
            let [key] = rest.as_slice() else {
                return Err(needs_arguments());
            };
            let key = lua_text::text(key);
            let node = this.0.child(Step::Key(key.clone()));
            let found = this.object(|map| map.get(&key).cloned())?;
            match found {
                Some(value) => to_lua(lua, node, &value),
                None => Ok(LuaValue::Nil),
            }
        });
        methods.add_method("set", |_, this, rest: MultiValue| {
            let rest = args(rest);
            let [key, value] = rest.as_slice() else {
                return Err(needs_arguments());
            };
            let key = lua_text::text(key);
            if let Some(value) = from_lua(value)? {
                this.object(|map| map.insert(key, value))?;
            }
            Ok(())
        });
        methods.add_method("len", |_, this, ()| this.object(|map| map.len()));
        methods.add_method("del", |_, this, rest: MultiValue| {
            let rest = args(rest);
            let [key] = rest.as_slice() else {
                return Err(needs_arguments());
            };
            let key = lua_text::text(key);
            this.object(|map| map.remove(&key))?;
            Ok(())
        });
        methods.add_method("keys", |lua, this, ()| {
            let mut keys = this.object(|map| map.keys().cloned().collect::<Vec<_>>())?;
            keys.sort();
            let list = tree(Value::Array(keys.into_iter().map(Value::String).collect()));
            lua.create_userdata(LuaList::root(&list))
        });
        methods.add_method("keyExists", |_, this, rest: MultiValue| {
            let rest = args(rest);
            let [key] = rest.as_slice() else {
                return Err(needs_arguments());
            };
            let key = lua_text::text(key);
            this.object(|map| map.contains_key(&key))
        });
    }
}

impl UserData for LuaList {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method("get", |lua, this, rest: MultiValue| {
            let rest = args(rest);
            let [index] = rest.as_slice() else {
                return Err(needs_arguments());
            };
            let Some(index) = index_of(index).and_then(|i| usize::try_from(i).ok()) else {
                return Ok(LuaValue::Nil);
            };
            let node = this.0.child(Step::Index(index));
            match this.items(|items| items.get(index).cloned())? {
                Some(value) => to_lua(lua, node, &value),
                None => Ok(LuaValue::Nil),
            }
        });
        methods.add_method("set", |_, this, rest: MultiValue| {
            let rest = args(rest);
            let [index, value] = rest.as_slice() else {
                return Err(needs_arguments());
            };
            let Some(index) = index_of(index).and_then(|i| usize::try_from(i).ok()) else {
                return Ok(());
            };
            let Some(value) = from_lua(value)? else {
                return Ok(());
            };
            this.items(|items| {
                if items.len() <= index {
                    items.resize(index + 1, Value::Null);
                }
                items[index] = value;
            })
        });
        methods.add_method("len", |_, this, ()| this.items(|items| items.len()));
        methods.add_method("del", |_, this, rest: MultiValue| {
            let rest = args(rest);
            let [index] = rest.as_slice() else {
                return Err(needs_arguments());
            };
            let Some(index) = index_of(index).and_then(|i| usize::try_from(i).ok()) else {
                return Ok(());
            };
            this.items(|items| {
                if index < items.len() {
                    items.remove(index);
                }
            })
        });
    }
}

impl UserData for LuaNil {}

/// Registers the `luaTable`, `luaList` and `luaNil` globals and their
/// `new` functions.
pub fn register(lua: &Lua) -> mlua::Result<()> {
    let globals = lua.globals();
    let table = lua.create_table()?;
    table.set(
        "new",
        lua.create_function(|lua, ()| lua.create_userdata(LuaTable::empty()))?,
    )?;
    globals.set("luaTable", table)?;
    let list = lua.create_table()?;
    list.set(
        "new",
        lua.create_function(|lua, ()| {
            lua.create_userdata(LuaList::root(&tree(Value::Array(Vec::new()))))
        })?,
    )?;
    globals.set("luaList", list)?;
    let nil = lua.create_table()?;
    nil.set(
        "new",
        lua.create_function(|lua, ()| lua.create_userdata(LuaNil))?,
    )?;
    globals.set("luaNil", nil)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(data: Value, code: &str) -> Value {
        let lua = Lua::new();
        register(&lua).unwrap();
        let shared = tree(data);
        lua.globals()
            .set(
                "data",
                lua.create_userdata(LuaTable::root(&shared)).unwrap(),
            )
            .unwrap();
        lua.load(code).exec().unwrap();
        let out = shared.borrow().clone();
        out
    }

    #[test]
    fn views_change_the_shared_data_as_go_maps_do() {
        let out = run(
            serde_json::json!({"user": {"name": "a"}, "list": [1, 2, 3], "gone": 1}),
            r#"
            local user = data:get("user")
            user:set("age", 42)
            local list = data:get("list")
            list:set(4, "x")
            list:del(0)
            data:del("gone")
            data:set("size", list:len())
            data:set("kind", data:get("missing") == nil)
            "#,
        );
        assert_eq!(
            out,
            serde_json::json!({
                "user": {"name": "a", "age": 42},
                "list": [2, 3, null, "x"],
                "size": 4,
                "kind": true
            })
        );
    }

    #[test]
    fn lua_tables_become_json_as_krakend_lua_makes_them() {
        let out = run(
            serde_json::json!({}),
            r#"
            data:set("top", {"a", "b"})
            data:set("nested", {inner = {1, 2}, empty = {}, mixed = {1, x = 2}})
            data:set("half", 1.5)
            data:set("null", luaNil.new())
            local t = luaTable.new()
            t:set("k", true)
            data:set("view", t)
            "#,
        );
        assert_eq!(
            sepia_json::to_string(&out),
            r#"{"half":1.5,"nested":{"empty":null,"inner":[1,2],"mixed":{"1":1,"x":2}},"null":null,"top":{"1":"a","2":"b"},"view":{"k":true}}"#
        );
    }

    #[test]
    fn null_reads_as_lua_nil_object_and_keys_are_sorted() {
        let out = run(
            serde_json::json!({"b": null, "a": 1}),
            r#"
            data:set("isNil", data:get("b") ~= nil)
            local keys = data:keys()
            data:set("first", keys:get(0))
            data:set("exists", data:keyExists("a"))
            "#,
        );
        assert_eq!(out["isNil"], true);
        assert_eq!(out["first"], "a");
        assert_eq!(out["exists"], true);
    }
}
