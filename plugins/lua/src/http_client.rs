//! `http_response.new(url [, method, body [, headers]])`: a request a
//! script makes, through the gateway's HTTP client (the host's `fetch`),
//! and its answer (krakend-lua's `decorator/http.go`).

use mlua::{Lua, MultiValue, UserData, UserDataMethods, Value as LuaValue};
use sepia_plugin_api::{FetchRequest, Header, RString, RVec};

use crate::{
    accessors::{self, arguments, list_of, needs_arguments, text},
    header_map::HeaderMap,
};

/// An answer to a script's request.
pub struct HttpResponse {
    status: u16,
    headers: HeaderMap,
    body: Vec<u8>,
}

/// Registers `http_response`; its requests time out after `timeout_ms`
/// (the endpoint's timeout).
pub fn register(lua: &Lua, timeout_ms: u64) -> mlua::Result<()> {
    let table = lua.create_table()?;
    table.set(
        "new",
        lua.create_function(move |lua, rest: MultiValue| {
            let request = request_of(arguments(rest), timeout_ms)?;
            let host = sepia_plugin_api::host()
                .ok_or_else(|| mlua::Error::runtime("no gateway to make the request through"))?;
            let answer = host
                .fetch(request)
                .map_err(|e| mlua::Error::runtime(e.message().to_owned()))?;
            lua.create_userdata(HttpResponse {
                status: answer.status,
                headers: HeaderMap::new(answer.headers),
                body: answer.body.into_vec(),
            })
        })?,
    )?;
    lua.globals().set("http_response", table)
}

fn request_of(args: Vec<LuaValue>, timeout_ms: u64) -> mlua::Result<FetchRequest> {
    let mut request = match args.as_slice() {
        [url] => FetchRequest::get(&text(url)),
        [url, method, body, rest @ ..] if rest.len() <= 1 => {
            let mut request = FetchRequest::get(&text(url));
            request.method = RString::from(text(method).to_ascii_uppercase());
            request.body = RVec::from(accessors::bytes(body));
            if let Some(LuaValue::Table(headers)) = rest.first() {
                request.headers = headers_of(headers)?;
            }
            request
        }
        _ => return Err(mlua::Error::runtime("need 1, 3 or 4 arguments")),
    };
    request.timeout_ms = timeout_ms;
    if !request
        .headers
        .iter()
        .any(|h| h.name.eq_ignore_ascii_case("user-agent"))
    {
        request.headers.push(Header::new(
            "user-agent",
            concat!("Sepia/", env!("CARGO_PKG_VERSION")),
        ));
    }
    Ok(request)
}

/// A table of header names to a value or a list of values.
fn headers_of(table: &mlua::Table) -> mlua::Result<RVec<Header>> {
    let mut out = RVec::new();
    for pair in table.pairs::<LuaValue, LuaValue>() {
        let (name, value) = pair?;
        let name = text(&name);
        match value {
            LuaValue::Table(list) => {
                for item in list.sequence_values::<LuaValue>() {
                    out.push(Header::new(&name, text(&item?)));
                }
            }
            LuaValue::String(s) => out.push(Header::new(&name, s.as_bytes().to_vec())),
            _ => {}
        }
    }
    Ok(out)
}

impl UserData for HttpResponse {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method("statusCode", |_, this, ()| Ok(f64::from(this.status)));
        methods.add_method("headers", |_, this, rest: MultiValue| {
            let rest = arguments(rest);
            let [name] = rest.as_slice() else {
                return Err(needs_arguments());
            };
            Ok(this
                .headers
                .values(&text(name))
                .first()
                .cloned()
                .unwrap_or_default())
        });
        methods.add_method("headerList", |lua, this, rest: MultiValue| {
            let rest = arguments(rest);
            let [name] = rest.as_slice() else {
                return Err(needs_arguments());
            };
            list_of(lua, &this.headers.values(&text(name)))
        });
        methods.add_method("body", |lua, this, ()| lua.create_string(&this.body));
        methods.add_method_mut("close", |_, this, ()| {
            this.body = Vec::new();
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_take_one_three_or_four_arguments() {
        let lua = Lua::new();
        let s = |t: &str| LuaValue::String(lua.create_string(t).unwrap());
        let get = request_of(vec![s("http://127.0.0.1:1/x")], 500).unwrap();
        assert_eq!((get.method.as_str(), get.timeout_ms), ("GET", 500));
        assert!(request_of(vec![s("u"), s("post")], 0).is_err());
        let headers = lua.create_table().unwrap();
        headers.set("X-One", "1").unwrap();
        headers
            .set("X-Many", lua.create_sequence_from(["a", "b"]).unwrap())
            .unwrap();
        let post = request_of(
            vec![s("http://h/"), s("post"), s("{}"), LuaValue::Table(headers)],
            0,
        )
        .unwrap();
        assert_eq!(post.method.as_str(), "POST");
        assert_eq!(post.body.as_slice(), b"{}");
        let mut names: Vec<&str> = post.headers.iter().map(|h| h.name.as_str()).collect();
        names.sort();
        assert_eq!(names, ["user-agent", "x-many", "x-many", "x-one"]);
    }
}
