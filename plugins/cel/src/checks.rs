//! The `check_expr` list, read and compiled as krakend-cel reads it.
//!
//! krakend-cel sorts a list by the text of each expression: one naming
//! `req` is checked on the request, one naming `resp` on the answer, one
//! naming `JWT` on the token's claims (at an endpoint with a validator);
//! one naming two of them is in both lists. Each list counts its own
//! evaluators from 0, and the failing one's number is in the error.

use std::{collections::HashSet, sync::Arc};

use cel::{
    common::ast::{EntryExpr, Expr, IdedExpr, MapExpr, StructExpr},
    Program,
};
use sepia_plugin_api::ModifierScope;
use serde_json::Value;

/// What krakend-cel declares: cel-go's checker refuses any other name.
pub const REQUEST_VARIABLES: &[&str] = &[
    "req_method",
    "req_path",
    "req_params",
    "req_headers",
    "req_querystring",
];
pub const RESPONSE_VARIABLES: &[&str] = &[
    "resp_completed",
    "resp_metadata_status",
    "resp_metadata_headers",
    "resp_data",
];
pub const NOW: &str = "now";
pub const JWT: &str = "JWT";

/// One compiled expression.
pub struct Check {
    /// As written.
    pub source: String,
    pub program: Program,
    /// The variables it reads, to bind only those.
    pub variables: HashSet<String>,
}

/// The compiled lists.
#[derive(Default)]
pub struct Checks {
    pub request: Vec<Arc<Check>>,
    pub response: Vec<Arc<Check>>,
    pub claims: Vec<Arc<Check>>,
}

impl Checks {
    /// Reads the namespace's value: an array of `{"check_expr": "..."}`.
    /// Every problem is reported at once, each with its place
    /// (`[1].check_expr`) and, for a syntax error, the line and column.
    pub fn parse(config_json: &str, scope: ModifierScope) -> Result<Self, String> {
        let value: Value =
            serde_json::from_str(config_json).map_err(|e| format!("the value is not JSON: {e}"))?;
        let Value::Array(entries) = value else {
            return Err(format!(
                "must be an array of {{\"check_expr\": \"...\"}} objects, not {}",
                sepia_json::type_name(&value)
            ));
        };
        let mut checks = Checks::default();
        let mut problems = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            match Self::entry(i, entry, scope) {
                Ok(Some((check, lists))) => checks.add(check, lists),
                Ok(None) => {}
                Err(problem) => problems.push(problem),
            }
        }
        if problems.is_empty() {
            Ok(checks)
        } else {
            Err(problems.join("; "))
        }
    }

    fn add(&mut self, check: Check, lists: Lists) {
        let check = Arc::new(check);
        for (wanted, list) in [
            (lists.request, &mut self.request),
            (lists.response, &mut self.response),
            (lists.claims, &mut self.claims),
        ] {
            if wanted {
                list.push(Arc::clone(&check));
            }
        }
    }

    fn entry(
        i: usize,
        entry: &Value,
        scope: ModifierScope,
    ) -> Result<Option<(Check, Lists)>, String> {
        let Value::Object(fields) = entry else {
            return Err(format!(
                "[{i}] must be an object with \"check_expr\", not {}",
                sepia_json::type_name(entry)
            ));
        };
        for key in fields.keys() {
            match key.as_str() {
                "check_expr" => {}
                // In krakend-cel's struct, read by nothing.
                "mod_expr" => {
                    tracing::warn!("[{i}].mod_expr is ignored: KrakenD evaluates check_expr only")
                }
                other => {
                    return Err(format!(
                        "[{i}] has an unknown setting \"{other}\": the one read is \"check_expr\""
                    ))
                }
            }
        }
        let source = match fields.get("check_expr") {
            Some(Value::String(s)) => s.clone(),
            Some(other) => {
                return Err(format!(
                    "[{i}].check_expr must be a string, not {}",
                    sepia_json::type_name(other)
                ))
            }
            None => return Err(format!("[{i}] has no \"check_expr\"")),
        };
        if source.trim().is_empty() {
            tracing::warn!("[{i}].check_expr is empty: nothing is checked");
            return Ok(None);
        }
        let lists = Lists {
            request: source.contains("req"),
            response: source.contains("resp"),
            claims: source.contains(JWT) && scope == ModifierScope::Endpoint,
        };
        if !(lists.request || lists.response || lists.claims) {
            return Err(if source.contains(JWT) {
                format!("[{i}].check_expr reads the token's claims, which KrakenD checks at an endpoint only (with \"auth/validator\"): move it to the endpoint's extra_config")
            } else {
                format!("[{i}].check_expr names no req_, resp_ or JWT variable, and KrakenD checks an expression only when it does: this one would never run")
            });
        }
        let program = Program::compile(&source)
            .map_err(|e| format!("[{i}].check_expr {source:?} does not parse: {e}"))?;
        let mut variables = HashSet::new();
        free_variables(program.expression(), &mut Vec::new(), &mut variables);
        let mut unknown: Vec<&String> = variables.iter().filter(|v| !is_declared(v)).collect();
        unknown.sort();
        if !unknown.is_empty() {
            return Err(format!(
                "[{i}].check_expr {source:?} reads {}, which KrakenD does not declare (cel-go refuses it and KrakenD skips the check): use {}",
                unknown.iter().map(|v| format!("\"{v}\"")).collect::<Vec<_>>().join(", "),
                declared_names()
            ));
        }
        Ok(Some((
            Check {
                source,
                program,
                variables,
            },
            lists,
        )))
    }
}

/// The variables `expr` reads from its activation: identifiers that are
/// not bound by an enclosing macro (`exists(v, ...)` binds `v`).
/// cel-rust's own `references()` counts those too.
fn free_variables(expr: &IdedExpr, bound: &mut Vec<String>, out: &mut HashSet<String>) {
    match &expr.expr {
        Expr::Ident(name) => {
            // `@`-names are the parser's own accumulators.
            if !name.starts_with('@') && !bound.contains(name) {
                out.insert(name.clone());
            }
        }
        Expr::Call(call) => {
            if let Some(target) = &call.target {
                free_variables(target, bound, out);
            }
            for arg in &call.args {
                free_variables(arg, bound, out);
            }
        }
        Expr::Comprehension(comprehension) => {
            free_variables(&comprehension.iter_range, bound, out);
            free_variables(&comprehension.accu_init, bound, out);
            let depth = bound.len();
            bound.push(comprehension.iter_var.clone());
            bound.extend(comprehension.iter_var2.clone());
            bound.push(comprehension.accu_var.clone());
            for inner in [
                &comprehension.loop_cond,
                &comprehension.loop_step,
                &comprehension.result,
            ] {
                free_variables(inner, bound, out);
            }
            bound.truncate(depth);
        }
        Expr::List(list) => {
            for element in &list.elements {
                free_variables(element, bound, out);
            }
        }
        Expr::Map(MapExpr { entries }) | Expr::Struct(StructExpr { entries, .. }) => {
            for entry in entries {
                match &entry.expr {
                    EntryExpr::StructField(field) => free_variables(&field.value, bound, out),
                    EntryExpr::MapEntry(entry) => {
                        free_variables(&entry.key, bound, out);
                        free_variables(&entry.value, bound, out);
                    }
                }
            }
        }
        Expr::Select(select) => free_variables(&select.operand, bound, out),
        Expr::Literal(_) | Expr::Unspecified => {}
    }
}

struct Lists {
    request: bool,
    response: bool,
    claims: bool,
}

fn is_declared(name: &str) -> bool {
    name == NOW
        || name == JWT
        || REQUEST_VARIABLES.contains(&name)
        || RESPONSE_VARIABLES.contains(&name)
}

fn declared_names() -> String {
    let mut all = vec![NOW];
    all.extend_from_slice(REQUEST_VARIABLES);
    all.extend_from_slice(RESPONSE_VARIABLES);
    all.push(JWT);
    all.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(json: &str) -> Result<Checks, String> {
        Checks::parse(json, ModifierScope::Endpoint)
    }

    #[test]
    fn expressions_go_to_the_lists_their_text_names() {
        let checks = endpoint(
            r#"[{"check_expr": "'x' in req_headers['X-Header']"},
                {"check_expr": "resp_data.ok == true"},
                {"check_expr": "size(JWT.roles) > 1"},
                {"check_expr": "req_method == 'GET' && resp_completed"}]"#,
        )
        .unwrap();
        assert_eq!(checks.request.len(), 2);
        assert_eq!(checks.response.len(), 2);
        assert_eq!(checks.claims.len(), 1);
        assert!(checks.request[0].variables.contains("req_headers"));
    }

    #[test]
    fn macro_variables_are_not_taken_for_undeclared_ones() {
        let checks =
            endpoint(r#"[{"check_expr": "req_headers['Accept'].exists(v, v == 'a')"}]"#).unwrap();
        assert_eq!(checks.request.len(), 1);
    }

    #[test]
    fn problems_name_their_entry() {
        for (json, wanted) in [
            (r#"{"check_expr": "x"}"#, "must be an array"),
            (
                r#"[{"check_expr": "req_method =="}]"#,
                "[0].check_expr \"req_method ==\" does not parse",
            ),
            (
                r#"[{"check_expr": "req_metod == 'GET'"}]"#,
                "reads \"req_metod\"",
            ),
            (r#"[{"check_expr": "now > '2020'"}]"#, "would never run"),
            (r#"[{"check_expr": 1}]"#, "must be a string"),
            (
                r#"[{"check": "req_method == 'GET'"}]"#,
                "unknown setting \"check\"",
            ),
        ] {
            let err = endpoint(json).err().unwrap();
            assert!(err.contains(wanted), "{json}: {err}");
        }
        let err = Checks::parse(
            r#"[{"check_expr": "JWT.sub == 'a'"}]"#,
            ModifierScope::Backend,
        )
        .err()
        .unwrap();
        assert!(err.contains("at an endpoint only"), "{err}");
    }
}
