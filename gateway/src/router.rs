//! Maps a request's method and path to an endpoint, extracting `{param}`
//! values. Static paths are one hash look-up; paths with parameters are
//! walked down a tree of segments, one per method as gin keeps them, so a
//! look-up costs the path's depth, not the number of endpoints. A literal
//! segment wins over a parameter, and the walk backs up when a literal
//! leads nowhere (gin's order since 1.8). A path that misses but would match
//! with its trailing slash toggled, or cleaned and compared without case,
//! is redirected there, as gin (KrakenD's router, both generations) does.

use std::collections::HashMap;

use http::Method;

/// One segment of the parameter routes' tree: the routes that go on with
/// a literal segment, with a parameter, and the one ending here (its index
/// in [`Router::values`]: a value is an endpoint, half a kilobyte, and
/// most nodes end no route).
#[derive(Debug, Default)]
struct Node {
    literals: Literals,
    param: Option<Box<Node>>,
    value: Option<usize>,
}

/// A node's literal children. Most nodes have one or two (`/svcN/items`
/// has one under each `svcN`), and a hash table a node cost half a
/// kilobyte an endpoint: a short list is searched in order, and a node
/// with many children (the first segment of thousands of routes) hashes.
#[derive(Debug)]
enum Literals {
    Few(Vec<(Box<str>, Node)>),
    /// Boxed: inline, the table made every node half as large again, and
    /// few nodes have one.
    #[allow(clippy::box_collection)]
    Many(Box<HashMap<Box<str>, Node>>),
}

/// Beyond this many children, a node hashes its literals.
const FEW_LITERALS: usize = 8;

impl Default for Literals {
    fn default() -> Self {
        Self::Few(Vec::new())
    }
}

impl Literals {
    fn get(&self, segment: &str) -> Option<&Node> {
        match self {
            Self::Few(few) => few.iter().find(|(s, _)| **s == *segment).map(|(_, n)| n),
            Self::Many(many) => many.get(segment),
        }
    }

    /// The child of `segment`, made when it is new.
    fn entry(&mut self, segment: &str) -> &mut Node {
        if let Self::Few(few) = self {
            if few.len() >= FEW_LITERALS && !few.iter().any(|(s, _)| **s == *segment) {
                *self = Self::Many(Box::new(std::mem::take(few).into_iter().collect()));
            }
        }
        match self {
            Self::Few(few) => {
                let at = match few.iter().position(|(s, _)| **s == *segment) {
                    Some(at) => at,
                    None => {
                        few.push((segment.into(), Node::default()));
                        few.len() - 1
                    }
                };
                &mut few[at].1
            }
            Self::Many(many) => many.entry(segment.into()).or_default(),
        }
    }

    fn iter(&self) -> impl Iterator<Item = (&str, &Node)> {
        let (few, many) = match self {
            Self::Few(few) => (Some(few.iter()), None),
            Self::Many(many) => (None, Some(many.iter())),
        };
        let few = few.into_iter().flatten().map(|(s, n)| (&**s, n));
        few.chain(many.into_iter().flatten().map(|(s, n)| (&**s, n)))
    }

    /// Gives back what growing left unused, once every route is in.
    fn shrink(&mut self) {
        match self {
            Self::Few(few) => {
                few.shrink_to_fit();
                few.iter_mut().for_each(|(_, n)| n.shrink());
            }
            Self::Many(many) => {
                many.shrink_to_fit();
                many.values_mut().for_each(Node::shrink);
            }
        }
    }
}

impl Node {
    fn shrink(&mut self) {
        self.literals.shrink();
        if let Some(param) = &mut self.param {
            param.shrink();
        }
    }
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
    /// The static paths by their lower-cased text, for the case-blind
    /// redirect.
    folded_statics: HashMap<String, Vec<String>>,
    /// The parameter routes, a tree a method.
    trees: HashMap<Method, Node>,
    /// The parameter routes' values.
    values: Vec<T>,
    /// The methods in the order their first route came, which is the order
    /// gin lists them in (its trees').
    methods: Vec<Method>,
}

impl<T> Default for Router<T> {
    fn default() -> Self {
        Self {
            statics: HashMap::new(),
            folded_statics: HashMap::new(),
            trees: HashMap::new(),
            values: Vec::new(),
            methods: Vec::new(),
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
    /// Adds a route. `path` uses `{name}` segments for parameters. A second
    /// route of one method and path shape replaces nothing: the first stays
    /// (configurations are checked for duplicates before).
    pub fn insert(&mut self, method: Method, path: &str, value: T) {
        if !self.methods.contains(&method) {
            self.methods.push(method.clone());
        }
        let is_param = |s: &str| s.starts_with('{') && s.ends_with('}');
        if !path.split('/').skip(1).any(is_param) {
            self.folded_statics
                .entry(path.to_lowercase())
                .or_default()
                .push(path.to_owned());
            self.statics
                .entry(path.to_owned())
                .or_default()
                .push((method, value));
            return;
        }
        let mut node = self.trees.entry(method).or_default();
        for segment in path.split('/').skip(1) {
            node = if is_param(segment) {
                node.param.get_or_insert_with(Box::default)
            } else {
                node.literals.entry(segment)
            };
        }
        if node.value.is_none() {
            node.value = Some(self.values.len());
            self.values.push(value);
        }
    }

    /// Gives back the room the tables grew into; called once every route
    /// is in (an endpoint is half a kilobyte, and doubling left up to
    /// half the values' table unused).
    pub fn shrink_to_fit(&mut self) {
        self.statics.shrink_to_fit();
        self.statics.values_mut().for_each(Vec::shrink_to_fit);
        self.folded_statics.shrink_to_fit();
        self.trees.values_mut().for_each(Node::shrink);
        self.values.shrink_to_fit();
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
        let tree = self.trees.get(method)?;
        let mut values = Vec::new();
        let at = walk_exact(tree, path.strip_prefix('/')?, &mut values)?;
        Some((&self.values[at], values))
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
        if let Some(routes) = self.folded_statics.get(&path.to_lowercase()) {
            let served = routes.iter().find(|route| {
                self.statics
                    .get(route.as_str())
                    .is_some_and(|methods| methods.iter().any(|(m, _)| m == method))
            });
            if let Some(route) = served {
                return Some(route.clone());
            }
        }
        let tree = self.trees.get(method)?;
        let mut segments = Vec::new();
        walk_folded(tree, path.strip_prefix('/')?, &mut segments)?;
        let mut out = String::with_capacity(path.len());
        for segment in segments {
            out.push('/');
            out.push_str(segment);
        }
        Some(out)
    }

    /// The methods this exact path is served with, in gin's order.
    fn methods_of(&self, path: &str) -> Vec<Method> {
        let statics = self.statics.get(path);
        let Some(rest) = path.strip_prefix('/') else {
            return Vec::new();
        };
        self.methods
            .iter()
            .filter(|method| {
                statics.is_some_and(|methods| methods.iter().any(|(m, _)| m == *method))
                    || self
                        .trees
                        .get(*method)
                        .is_some_and(|tree| walk_exact(tree, rest, &mut Vec::new()).is_some())
            })
            .cloned()
            .collect()
    }
}

/// The next segment of `rest` (a path less its leading `/`), and what
/// follows it, if anything does.
fn split_segment(rest: &str) -> (&str, Option<&str>) {
    match rest.find('/') {
        Some(at) => (&rest[..at], Some(&rest[at + 1..])),
        None => (rest, None),
    }
}

/// The route (its value's index) `rest` reaches from `node`, its
/// parameters' values pushed on `values`: a literal child first, then the
/// parameter one.
fn walk_exact<'p>(node: &Node, rest: &'p str, values: &mut Vec<&'p str>) -> Option<usize> {
    let (segment, tail) = split_segment(rest);
    let next = |child: &Node, values: &mut Vec<&'p str>| match tail {
        Some(tail) => walk_exact(child, tail, values),
        None => child.value,
    };
    if let Some(found) = node
        .literals
        .get(segment)
        .and_then(|child| next(child, values))
    {
        return Some(found);
    }
    let child = node.param.as_deref().filter(|_| !segment.is_empty())?;
    values.push(segment);
    let found = next(child, values);
    if found.is_none() {
        values.pop();
    }
    found
}

/// As [`walk_exact`], literal segments compared without case; `spelled`
/// gets each segment as the route writes it (the request's value for a
/// parameter).
fn walk_folded<'r, 'p>(node: &'r Node, rest: &'p str, spelled: &mut Vec<&'r str>) -> Option<()>
where
    'p: 'r,
{
    let (segment, tail) = split_segment(rest);
    let next = |child: &'r Node, spelled: &mut Vec<&'r str>| match tail {
        Some(tail) => walk_folded(child, tail, spelled),
        None => child.value.map(|_| ()),
    };
    for (literal, child) in node.literals.iter() {
        if same_folded(literal, segment) {
            spelled.push(literal);
            if next(child, spelled).is_some() {
                return Some(());
            }
            spelled.pop();
        }
    }
    let child = node.param.as_deref().filter(|_| !segment.is_empty())?;
    spelled.push(segment);
    let found = next(child, spelled);
    if found.is_none() {
        spelled.pop();
    }
    found
}

/// Whether two segments are the same without regard to case, as gin's
/// fixed-path redirect compares them.
fn same_folded(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b) || a.to_lowercase() == b.to_lowercase()
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

    #[test]
    fn a_literal_wins_over_a_parameter_and_the_walk_backs_up() {
        let mut r = Router::default();
        r.insert(Method::GET, "/a/{x}/c", 1);
        r.insert(Method::GET, "/a/b/{y}", 2);
        r.insert(Method::GET, "/a/b/d/e", 3);
        r.insert(Method::DELETE, "/a/{x}", 4);
        r.insert(Method::GET, "/a/new", 5);
        match find(&r, Method::GET, "/a/b/c") {
            RouteMatch::Found(2, values) => assert_eq!(values, ["c"]),
            other => panic!("{other:?}"),
        }
        // `b` leads to no route of two more segments but /d/e: back to
        // the parameter.
        match find(&r, Method::GET, "/a/b/x/c") {
            RouteMatch::NotFound => {}
            other => panic!("{other:?}"),
        }
        match find(&r, Method::GET, "/a/z/c") {
            RouteMatch::Found(1, values) => assert_eq!(values, ["z"]),
            other => panic!("{other:?}"),
        }
        // A tree a method, as gin's: DELETE's parameter serves /a/new.
        match find(&r, Method::DELETE, "/a/new") {
            RouteMatch::Found(4, values) => assert_eq!(values, ["new"]),
            other => panic!("{other:?}"),
        }
        match find(&r, Method::PUT, "/a/new") {
            RouteMatch::MethodNotAllowed(m) => assert_eq!(m, [Method::GET, Method::DELETE]),
            other => panic!("{other:?}"),
        }
        assert_eq!(redirect_of(&r, "/A/B/Q"), "/a/b/Q");
    }

    #[test]
    fn five_thousand_routes_each_found() {
        let mut r = Router::default();
        for n in 0..5000u32 {
            r.insert(Method::GET, &format!("/svc{n}/items/{{id}}"), n);
        }
        // As the gateway leaves it; svc0 to svc7 came before the root's
        // children were hashed.
        r.shrink_to_fit();
        for n in [0u32, 7, 8, 2500, 4999] {
            let path = format!("/svc{n}/items/7");
            match find(&r, Method::GET, &path) {
                RouteMatch::Found(value, values) => {
                    assert_eq!((*value, values), (n, vec!["7"]));
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(redirect_of(&r, "/SVC4999/Items/7"), "/svc4999/items/7");
    }

    mod against_a_reference {
        use proptest::prelude::*;

        use super::*;

        /// Segments from a small alphabet, so that routes overlap.
        fn route() -> impl Strategy<Value = Vec<&'static str>> {
            prop::collection::vec(prop::sample::select(vec!["a", "b", "{p}", ""]), 1..4)
        }

        fn path() -> impl Strategy<Value = Vec<&'static str>> {
            prop::collection::vec(prop::sample::select(vec!["a", "b", "c", ""]), 1..4)
        }

        /// gin's choice spelled plainly: of the routes that match, the one
        /// with a literal where the others first have a parameter.
        fn reference(routes: &[(bool, Vec<&str>)], post: bool, path: &[&str]) -> Option<usize> {
            let matches =
                |route: &[&str]| {
                    route.len() == path.len()
                        && route.iter().zip(path).all(|(r, p)| {
                            if *r == "{p}" {
                                !p.is_empty()
                            } else {
                                r == p
                            }
                        })
                };
            let mut best: Option<usize> = None;
            for (i, (is_post, route)) in routes.iter().enumerate() {
                if *is_post != post || !matches(route) {
                    continue;
                }
                best = match best {
                    None => Some(i),
                    Some(b) => {
                        let rank = |r: &[&str]| r.iter().map(|s| *s != "{p}").collect::<Vec<_>>();
                        let same_shape = rank(&routes[b].1) == rank(route);
                        // The first of one shape stays; else more literal
                        // earlier wins.
                        if !same_shape && rank(route) > rank(&routes[b].1) {
                            Some(i)
                        } else {
                            Some(b)
                        }
                    }
                };
            }
            best
        }

        proptest! {
            #[test]
            fn the_tree_finds_what_the_plain_rule_finds(
                routes in prop::collection::vec((any::<bool>(), route()), 1..12),
                post in any::<bool>(),
                path in path(),
            ) {
                let mut r = Router::default();
                for (i, (is_post, route)) in routes.iter().enumerate() {
                    let method = if *is_post { Method::POST } else { Method::GET };
                    r.insert(method, &format!("/{}", route.join("/")), i);
                }
                let method = if post { Method::POST } else { Method::GET };
                let text = format!("/{}", path.join("/"));
                let found = match r.find(&method, &text, Redirects::NONE) {
                    RouteMatch::Found(i, _) => Some(*i),
                    _ => None,
                };
                let wanted = reference(&routes, post, &path);
                prop_assert_eq!(found, wanted, "routes {:?}, {} {}", routes, method, text);
            }
        }
    }
}
