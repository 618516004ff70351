//! Maps a request's method and path to an endpoint, extracting `{param}`
//! values. Static paths are a hash look-up; paths with parameters are matched
//! segment by segment. A path that misses but would match with its trailing
//! slash toggled, or cleaned and compared without case, is redirected there,
//! as gin (KrakenD's router, both generations) does.

use std::collections::HashMap;

use http::Method;

/// One path segment of a route.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param,
}

#[derive(Debug)]
struct ParamRoute<T> {
    segments: Vec<Segment>,
    methods: Vec<(Method, T)>,
}

/// The outcome of a look-up.
#[derive(Debug)]
pub enum RouteMatch<'r, 'p, T> {
    /// Found: the route's value and its `{param}` values (raw, still
    /// percent-encoded, in path order; empty for a static path, which does
    /// not allocate).
    Found(&'r T, Vec<&'p str>),
    /// The path exists but not with this method; the methods it has.
    MethodNotAllowed(Vec<Method>),
    /// Not this path, but this one (gin's `RedirectTrailingSlash` and
    /// `RedirectFixedPath`): the path to redirect to, still percent-encoded.
    Redirect(String),
    /// No such path.
    NotFound,
}

/// A routing table from `(method, path)` to `T`.
#[derive(Debug)]
pub struct Router<T> {
    statics: HashMap<String, Vec<(Method, T)>>,
    params: Vec<ParamRoute<T>>,
}

impl<T> Default for Router<T> {
    fn default() -> Self {
        Self {
            statics: HashMap::new(),
            params: Vec::new(),
        }
    }
}

/// Which of gin's redirects the router makes (`router.disable_redirect_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Redirects {
    /// `/users/` for `/users`, and back.
    pub trailing_slash: bool,
    /// `/Users//x` for `/users/x`: the path cleaned, letters of any case.
    pub fixed_path: bool,
}

impl Redirects {
    /// No redirects: exact look-ups only.
    pub const NONE: Redirects = Redirects {
        trailing_slash: false,
        fixed_path: false,
    };
}

impl Default for Redirects {
    fn default() -> Self {
        Self {
            trailing_slash: true,
            fixed_path: true,
        }
    }
}

/// The same path with its trailing slash added or removed.
fn toggle_slash(path: &str) -> String {
    match path.strip_suffix('/') {
        Some(stripped) => stripped.to_owned(),
        None => format!("{path}/"),
    }
}

/// `path` with `//`, `/./` and `/../` resolved, as Go's `path.Clean` does
/// (keeping a trailing slash, as gin's `cleanPath` does).
pub fn clean_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    let mut clean = format!("/{}", parts.join("/"));
    if path.len() > 1 && path.ends_with('/') && clean.len() > 1 {
        clean.push('/');
    }
    clean
}

impl<T> Router<T> {
    /// Adds a route. `path` uses `{name}` segments for parameters.
    pub fn insert(&mut self, method: Method, path: &str, value: T) {
        let segments: Vec<Segment> = path
            .split('/')
            .skip(1)
            .map(|s| {
                if s.starts_with('{') && s.ends_with('}') {
                    Segment::Param
                } else {
                    Segment::Literal(s.to_owned())
                }
            })
            .collect();
        if !segments.contains(&Segment::Param) {
            self.statics
                .entry(path.to_owned())
                .or_default()
                .push((method, value));
            return;
        }
        match self.params.iter_mut().find(|r| r.segments == segments) {
            Some(route) => route.methods.push((method, value)),
            None => self.params.push(ParamRoute {
                segments,
                methods: vec![(method, value)],
            }),
        }
    }

    /// Finds the route of a request, in gin's order: this method's route;
    /// else a redirect to the path with the trailing slash toggled, or
    /// cleaned and without case, that this method serves; else the other
    /// methods of this exact path; else nothing.
    pub fn find<'r, 'p>(
        &'r self,
        method: &Method,
        path: &'p str,
        redirects: Redirects,
    ) -> RouteMatch<'r, 'p, T> {
        if let Some(found) = self.lookup(method, path) {
            return RouteMatch::Found(found.0, found.1);
        }
        if *method != Method::CONNECT && path != "/" {
            if redirects.trailing_slash {
                let toggled = toggle_slash(path);
                if self.lookup(method, &toggled).is_some() {
                    return RouteMatch::Redirect(toggled);
                }
            }
            if redirects.fixed_path {
                if let Some(fixed) = self.fixed_path(method, path, redirects.trailing_slash) {
                    return RouteMatch::Redirect(fixed);
                }
            }
        }
        let allowed = self.methods_of(path);
        if allowed.is_empty() {
            RouteMatch::NotFound
        } else {
            RouteMatch::MethodNotAllowed(allowed)
        }
    }

    /// This method's route for exactly `path`, and its `{param}` values.
    /// On every request's path: a static path is one hash look-up, and
    /// nothing is allocated for it.
    fn lookup<'r, 'p>(&'r self, method: &Method, path: &'p str) -> Option<(&'r T, Vec<&'p str>)> {
        if let Some(methods) = self.statics.get(path) {
            if let Some((_, value)) = methods.iter().find(|(m, _)| m == method) {
                return Some((value, Vec::new()));
            }
        }
        self.params.iter().find_map(|route| {
            let values = match_segments(&route.segments, path, Case::Exact)?;
            let (_, value) = route.methods.iter().find(|(m, _)| m == method)?;
            Some((value, values))
        })
    }

    /// The path as the route this method serves spells it, when `path`
    /// cleaned (and, with `trailing_slash`, also toggled) matches one
    /// without regard to case: gin's `findCaseInsensitivePath`.
    fn fixed_path(&self, method: &Method, path: &str, trailing_slash: bool) -> Option<String> {
        let clean = clean_path(path);
        let mut candidates = vec![clean.clone()];
        if trailing_slash && clean != "/" {
            candidates.push(toggle_slash(&clean));
        }
        for candidate in candidates {
            if let Some(spelled) = self.spelled(method, &candidate) {
                return (spelled != path).then_some(spelled);
            }
        }
        None
    }

    /// `path` as the route spells its literal segments, the request's
    /// values in its parameters.
    fn spelled(&self, method: &Method, path: &str) -> Option<String> {
        if let Some((route, _)) = self.statics.iter().find(|(route, methods)| {
            same_text(route, path, Case::Any) && methods.iter().any(|(m, _)| m == method)
        }) {
            return Some(route.clone());
        }
        let route = self.params.iter().find(|route| {
            route.methods.iter().any(|(m, _)| m == method)
                && match_segments(&route.segments, path, Case::Any).is_some()
        })?;
        let mut out = String::with_capacity(path.len());
        for (segment, part) in route.segments.iter().zip(path.split('/').skip(1)) {
            out.push('/');
            match segment {
                Segment::Literal(literal) => out.push_str(literal),
                Segment::Param => out.push_str(part),
            }
        }
        Some(out)
    }

    /// The methods this exact path is served with.
    fn methods_of(&self, path: &str) -> Vec<Method> {
        if let Some(methods) = self.statics.get(path) {
            return methods.iter().map(|(m, _)| m.clone()).collect();
        }
        self.params
            .iter()
            .filter(|route| match_segments(&route.segments, path, Case::Exact).is_some())
            .flat_map(|route| route.methods.iter().map(|(m, _)| m.clone()))
            .collect()
    }
}

/// How literal segments compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    Exact,
    /// Without regard to case, as gin's fixed-path redirect compares.
    Any,
}

fn same_text(a: &str, b: &str, case: Case) -> bool {
    match case {
        Case::Exact => a == b,
        Case::Any => a.eq_ignore_ascii_case(b) || a.to_lowercase() == b.to_lowercase(),
    }
}

fn match_segments<'p>(segments: &[Segment], path: &'p str, case: Case) -> Option<Vec<&'p str>> {
    let mut values = Vec::new();
    let mut parts = path.split('/').skip(1);
    for segment in segments {
        let part = parts.next()?;
        match segment {
            Segment::Literal(literal) if same_text(literal, part, case) => {}
            Segment::Literal(_) => return None,
            Segment::Param if part.is_empty() => return None,
            Segment::Param => values.push(part),
        }
    }
    if parts.next().is_some() {
        return None;
    }
    Some(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router() -> Router<u32> {
        let mut r = Router::default();
        r.insert(Method::GET, "/users", 1);
        r.insert(Method::POST, "/users", 2);
        r.insert(Method::GET, "/users/{id}", 3);
        r.insert(Method::DELETE, "/users/{id}", 4);
        r.insert(Method::GET, "/users/{id}/posts/{post}", 5);
        r
    }

    fn find<'r, 'p>(r: &'r Router<u32>, method: Method, path: &'p str) -> RouteMatch<'r, 'p, u32> {
        r.find(&method, path, Redirects::default())
    }

    #[test]
    fn static_and_param_routes_match() {
        let r = router();
        assert!(matches!(
            find(&r, Method::GET, "/users"),
            RouteMatch::Found(1, _)
        ));
        assert!(matches!(
            find(&r, Method::POST, "/users"),
            RouteMatch::Found(2, _)
        ));
        match find(&r, Method::GET, "/users/a%20b/posts/7") {
            RouteMatch::Found(5, values) => assert_eq!(values, vec!["a%20b", "7"]),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            find(&r, Method::DELETE, "/users/9"),
            RouteMatch::Found(4, _)
        ));
    }

    #[test]
    fn near_misses_redirect_as_gin_does() {
        let r = router();
        let redirect = |method: Method, path: &str| match find(&r, method, path) {
            RouteMatch::Redirect(to) => to,
            other => panic!("{path}: {other:?}"),
        };
        assert_eq!(redirect(Method::GET, "/users/"), "/users");
        assert_eq!(redirect(Method::POST, "/users/"), "/users");
        assert_eq!(redirect(Method::GET, "/users/9/"), "/users/9");
        assert_eq!(redirect(Method::GET, "/USERS"), "/users");
        assert_eq!(
            redirect(Method::GET, "/Users/AbC/Posts/7"),
            "/users/AbC/posts/7"
        );
        assert_eq!(redirect(Method::GET, "//users/./x/../9"), "/users/9");
        assert_eq!(redirect(Method::GET, "/USERS/"), "/users");
        let mut slashed = Router::default();
        slashed.insert(Method::GET, "/dir/", 1);
        assert_eq!(redirect_of(&slashed, "/dir"), "/dir/");
        // Switched off, near misses are misses.
        let off = Redirects {
            trailing_slash: false,
            fixed_path: false,
        };
        assert!(matches!(
            r.find(&Method::GET, "/users/", off),
            RouteMatch::NotFound
        ));
        assert!(matches!(
            r.find(&Method::GET, "/USERS", off),
            RouteMatch::NotFound
        ));
        // Only the request's own method counts: no PUT route to go to.
        assert!(matches!(
            find(&r, Method::PUT, "/users/"),
            RouteMatch::NotFound
        ));
    }

    fn redirect_of(r: &Router<u32>, path: &str) -> String {
        match r.find(&Method::GET, path, Redirects::default()) {
            RouteMatch::Redirect(to) => to,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn paths_are_cleaned_as_go_cleans_them() {
        assert_eq!(clean_path("/a//b/./c/../d"), "/a/b/d");
        assert_eq!(clean_path("/../a/"), "/a/");
        assert_eq!(clean_path("/"), "/");
        assert_eq!(clean_path("//"), "/");
    }

    #[test]
    fn wrong_method_and_unknown_paths_are_told_apart() {
        let r = router();
        match find(&r, Method::PUT, "/users/9") {
            RouteMatch::MethodNotAllowed(m) => assert_eq!(m, vec![Method::GET, Method::DELETE]),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            find(&r, Method::PUT, "/users"),
            RouteMatch::MethodNotAllowed(_)
        ));
        assert!(matches!(
            find(&r, Method::GET, "/users/9/x"),
            RouteMatch::NotFound
        ));
        assert!(matches!(
            find(&r, Method::GET, "/users//posts/1"),
            RouteMatch::NotFound
        ));
        assert!(matches!(
            find(&r, Method::GET, "/nope"),
            RouteMatch::NotFound
        ));
    }
}
