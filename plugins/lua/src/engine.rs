//! Running a namespace's Lua: one Lua state per thread and namespace, built
//! on first use with the sources run in it, so requests on different
//! threads never wait on each other and none pays to load the sources
//! again. krakend-lua builds a fresh state per request; to keep what a
//! request sees the same, each run gets its own global table over the
//! state's (what `pre` or `post` assigns to a global is gone after it),
//! and a state a script broke (the budget or the memory limit) is dropped.

use std::{
    cell::{Cell, RefCell},
    collections::HashMap,
    rc::Rc,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
};

use mlua::{Function, HookTriggers, Lua, LuaOptions, StdLib, Table, VmState};

use crate::{
    data,
    failure::{BudgetSpent, CustomError, Failure},
    http_client, json_helpers,
    script::{self, SourceMap, POST_CHUNK, PRE_CHUNK, SOURCES_CHUNK},
    settings::{Settings, Source},
};

/// Instructions one run may take before it is stopped: about a tenth of a
/// second of Lua, a thousand times what a header rewrite needs.
pub const INSTRUCTION_BUDGET: u64 = 10_000_000;
/// How often the budget is counted, in instructions.
const BUDGET_STEP: u32 = 1_000;
/// The memory one state may hold.
pub const MEMORY_LIMIT: usize = 64 * 1024 * 1024;

/// The registry slots `request.load()`, `response.load()` and `ctx.load()`
/// read the run's objects from.
pub const REQUEST_SLOT: &str = "sepia.lua.request";
pub const RESPONSE_SLOT: &str = "sepia.lua.response";
pub const CONTEXT_SLOT: &str = "sepia.lua.ctx";

/// Which code to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Pre,
    Post,
}

/// One namespace's Lua, shared by the threads that run it.
pub struct Engine {
    id: u64,
    /// Held while the engine lives; each thread's state keeps a weak
    /// handle, so that states of engines a reload dropped are freed.
    alive: Arc<()>,
    /// Where a request's context carries what `pre` left for `post`.
    carry_key: String,
    settings: Settings,
    /// The sources as read at start-up (`live` reads them on each run).
    sources: Arc<[Source]>,
    krakend2: bool,
    timeout_ms: u64,
}

/// A thread's state for one engine.
struct State {
    /// Its engine's [`Engine::alive`].
    owner: std::sync::Weak<()>,
    lua: Lua,
    sources: Arc<[Source]>,
    map: SourceMap,
    pre: Option<Function>,
    post: Option<Function>,
    /// The metatable of each run's globals: reads fall through to the
    /// state's.
    fallthrough: Table,
    spent: Rc<Cell<u64>>,
}

thread_local! {
    static STATES: RefCell<HashMap<u64, State>> = RefCell::new(HashMap::new());
}

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

impl Engine {
    pub fn new(settings: Settings, sources: Vec<Source>, krakend2: bool, timeout_ms: u64) -> Self {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        Engine {
            id,
            alive: Arc::new(()),
            carry_key: format!("sepia.lua.globals.{id}"),
            settings,
            sources: sources.into(),
            krakend2,
            timeout_ms,
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The key under which a request's context carries the globals `pre`
    /// left for `post`.
    pub fn carry_key(&self) -> &str {
        &self.carry_key
    }

    /// Runs `phase`'s code, if there is any: `bind` puts the run's objects
    /// into the state, `unbind` takes them back out (after a failure too).
    /// `carried` are the globals an earlier phase of the request left (as
    /// JSON); what this run leaves is returned when `post` will want it
    /// (krakend-lua runs both in one state).
    pub fn run<B, T>(
        &self,
        phase: Phase,
        carried: Option<&str>,
        bind: impl FnOnce(&Lua) -> mlua::Result<B>,
        unbind: impl FnOnce(&Lua, B) -> mlua::Result<T>,
    ) -> Result<(T, Option<String>), Failure> {
        let carry_out = phase == Phase::Pre && !self.settings.post.is_empty();
        let sources = self.current_sources()?;
        STATES.with(|states| {
            let mut states = states.borrow_mut();
            // The same sources are the same allocation, unless `live` read
            // them again: only then are the texts compared.
            let stale = states.get(&self.id).is_some_and(|state| {
                !Arc::ptr_eq(&state.sources, &sources) && state.sources != sources
            });
            if stale {
                states.remove(&self.id);
            }
            if !states.contains_key(&self.id) {
                // A new state on this thread: the moment to free those of
                // engines that are gone (a reload replaced the gateway).
                states.retain(|_, state| state.owner.strong_count() > 0);
                let built = self.build(sources)?;
                states.insert(self.id, built);
            }
            let Some(state) = states.get_mut(&self.id) else {
                return Err(Failure::Stopped(
                    "the Lua state could not be kept".to_owned(),
                ));
            };
            let outcome = state.run(phase, carried, carry_out, bind, unbind);
            if let Err(Failure::Stopped(_)) = &outcome {
                states.remove(&self.id);
            }
            outcome
        })
    }

    /// The sources to run: as read at start-up, or as they are now with
    /// `live`.
    fn current_sources(&self) -> Result<Arc<[Source]>, Failure> {
        if !self.settings.live {
            return Ok(self.sources.clone());
        }
        match self.settings.load_sources() {
            Ok(now) if *now == *self.sources => Ok(self.sources.clone()),
            Ok(now) => Ok(now.into()),
            Err(error) => Err(Failure::Script {
                message: format!("lua: unable to load required source: {error}"),
                place: None,
            }),
        }
    }

    fn build(&self, sources: Arc<[Source]>) -> Result<State, Failure> {
        let map = SourceMap::of(&sources);
        let fail = |error: mlua::Error| Failure::from_lua(&error, &map);
        // krakend-lua opens the base, package and table libraries, and the
        // whole standard library with `allow_open_libs`. `debug` is left
        // out even then: it could lift the instruction budget.
        let libs = if self.settings.allow_open_libs {
            StdLib::ALL_SAFE
        } else {
            StdLib::PACKAGE | StdLib::TABLE
        };
        let lua = Lua::new_with(libs, LuaOptions::default()).map_err(fail)?;
        lua.set_memory_limit(MEMORY_LIMIT).map_err(fail)?;
        self.register(&lua).map_err(fail)?;
        let spent = Rc::new(Cell::new(0u64));
        let counter = spent.clone();
        lua.set_hook(
            HookTriggers::new().every_nth_instruction(BUDGET_STEP),
            move |_, _| {
                let now = counter.get() + u64::from(BUDGET_STEP);
                counter.set(now);
                if now > INSTRUCTION_BUDGET {
                    return Err(mlua::Error::external(BudgetSpent {
                        instructions: INSTRUCTION_BUDGET,
                    }));
                }
                Ok(VmState::Continue)
            },
        )
        .map_err(fail)?;
        let fallthrough = lua.create_table().map_err(fail)?;
        fallthrough.set("__index", lua.globals()).map_err(fail)?;
        let compile = |name: &str, code: &str| -> Result<Option<Function>, Failure> {
            if code.is_empty() {
                return Ok(None);
            }
            lua.load(code)
                .set_name(format!("={name}"))
                .into_function()
                .map(Some)
                .map_err(fail)
        };
        let pre = compile(PRE_CHUNK, &self.settings.pre)?;
        let post = compile(POST_CHUNK, &self.settings.post)?;
        let joined = script::joined(&sources);
        if !joined.is_empty() {
            spent.set(0);
            lua.load(&joined)
                .set_name(format!("={SOURCES_CHUNK}"))
                .exec()
                .map_err(fail)?;
        }
        Ok(State {
            owner: Arc::downgrade(&self.alive),
            lua,
            sources,
            map,
            pre,
            post,
            fallthrough,
            spent,
        })
    }

    /// The globals krakend-lua's binder registers.
    fn register(&self, lua: &Lua) -> mlua::Result<()> {
        data::register(lua)?;
        http_client::register(lua, self.timeout_ms)?;
        json_helpers::register(lua)?;
        let globals = lua.globals();
        for (name, slot) in [
            ("request", REQUEST_SLOT),
            ("response", RESPONSE_SLOT),
            ("ctx", CONTEXT_SLOT),
        ] {
            let table = lua.create_table()?;
            table.set(
                "load",
                lua.create_function(move |lua, ()| lua.named_registry_value::<mlua::Value>(slot))?,
            )?;
            globals.set(name, table)?;
        }
        let krakend2 = self.krakend2;
        globals.set(
            "custom_error",
            lua.create_function(move |_, rest: mlua::MultiValue| {
                Err::<(), _>(mlua::Error::external(custom_error(rest, krakend2)?))
            })?,
        )?;
        Ok(())
    }
}

/// `custom_error(message [, status [, content type]])`.
fn custom_error(rest: mlua::MultiValue, krakend2: bool) -> mlua::Result<CustomError> {
    let args: Vec<mlua::Value> = rest.into_iter().collect();
    let Some(message) = args.first() else {
        return Err(mlua::Error::runtime("need arguments"));
    };
    let status = args.get(1).and_then(|code| match code {
        mlua::Value::Integer(i) => u16::try_from(*i).ok(),
        mlua::Value::Number(n) => Some(n.trunc())
            .filter(|n| (0.0..=65535.0).contains(n))
            .map(|n| n as u16),
        _ => None,
    });
    Ok(CustomError {
        message: crate::accessors::text(message),
        status,
        // krakend-lua 1.4 has no third argument.
        content_type: args.get(2).filter(|_| krakend2).map(crate::accessors::text),
    })
}

impl State {
    fn run<B, T>(
        &mut self,
        phase: Phase,
        carried: Option<&str>,
        carry_out: bool,
        bind: impl FnOnce(&Lua) -> mlua::Result<B>,
        unbind: impl FnOnce(&Lua, B) -> mlua::Result<T>,
    ) -> Result<(T, Option<String>), Failure> {
        let fail = |error: mlua::Error| Failure::from_lua(&error, &self.map);
        let code = match phase {
            Phase::Pre => self.pre.as_ref(),
            Phase::Post => self.post.as_ref(),
        };
        let bound = bind(&self.lua).map_err(fail)?;
        let ran = match code {
            None => Ok(None),
            Some(code) => self.call(code, carried, carry_out),
        };
        let taken = unbind(&self.lua, bound);
        for slot in [REQUEST_SLOT, RESPONSE_SLOT, CONTEXT_SLOT] {
            let _ = self.lua.set_named_registry_value(slot, mlua::Nil);
        }
        let left = ran.map_err(fail)?;
        Ok((taken.map_err(fail)?, left))
    }

    /// Runs `code` with globals of its own over the state's, seeded with
    /// `carried`; what it assigned, as JSON, when `carry_out`.
    fn call(
        &self,
        code: &Function,
        carried: Option<&str>,
        carry_out: bool,
    ) -> mlua::Result<Option<String>> {
        let globals = self.lua.create_table()?;
        if let Some(Ok(serde_json::Value::Object(values))) =
            carried.map(serde_json::from_str::<serde_json::Value>)
        {
            for (name, value) in values {
                globals.raw_set(name, json_helpers::to_lua(&self.lua, &value)?)?;
            }
        }
        globals.set_metatable(Some(self.fallthrough.clone()))?;
        code.set_environment(globals.clone())?;
        self.spent.set(0);
        code.call::<()>(())?;
        if !carry_out {
            return Ok(None);
        }
        use mlua::LuaSerdeExt;
        let options = mlua::DeserializeOptions::new()
            .deny_unsupported_types(false)
            .deny_recursive_tables(false);
        // Plain data only: functions and userdata stay behind.
        let left: serde_json::Value = self
            .lua
            .from_value_with(mlua::Value::Table(globals), options)
            .unwrap_or(serde_json::Value::Null);
        Ok(match left {
            serde_json::Value::Object(map) if !map.is_empty() => {
                Some(serde_json::Value::Object(map).to_string())
            }
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine(pre: &str) -> Engine {
        let (settings, sources) =
            Settings::parse(&serde_json::json!({ "pre": pre }).to_string()).unwrap();
        Engine::new(settings, sources, true, 1000)
    }

    fn run(engine: &Engine) {
        engine
            .run(Phase::Pre, None, |_| Ok(()), |_, ()| Ok(()))
            .unwrap();
    }

    fn states_here() -> usize {
        STATES.with(|states| states.borrow().len())
    }

    #[test]
    fn the_states_of_dropped_engines_are_freed() {
        let before = states_here();
        let old = engine("x = 1");
        run(&old);
        assert_eq!(states_here(), before + 1);
        drop(old);
        // A reload's new engine builds its state, and the old one goes.
        let new = engine("x = 2");
        run(&new);
        assert_eq!(states_here(), before + 1);
        run(&new);
        assert_eq!(states_here(), before + 1);
    }
}
