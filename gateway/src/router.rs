//! Maps a request's method and path to an endpoint, extracting `{param}`
//! values. Static paths are a hash look-up; paths with parameters are matched
//! segment by segment.

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

fn normalise(path: &str) -> &str {
    // `/users/` and `/users` are one path, as in KrakenD (gin redirects).
    if path.len() > 1 {
        path.trim_end_matches('/')
    } else {
        path
    }
}

impl<T> Router<T> {
    /// Adds a route. `path` uses `{name}` segments for parameters.
    pub fn insert(&mut self, method: Method, path: &str, value: T) {
        let path = normalise(path);
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

    /// Finds the route of a request.
    pub fn find<'r, 'p>(&'r self, method: &Method, path: &'p str) -> RouteMatch<'r, 'p, T> {
        let path = normalise(path);
        if let Some(methods) = self.statics.get(path) {
            return match methods.iter().find(|(m, _)| m == method) {
                Some((_, value)) => RouteMatch::Found(value, Vec::new()),
                None => {
                    RouteMatch::MethodNotAllowed(methods.iter().map(|(m, _)| m.clone()).collect())
                }
            };
        }
        let mut allowed: Vec<Method> = Vec::new();
        for route in &self.params {
            let Some(values) = match_segments(&route.segments, path) else {
                continue;
            };
            if let Some((_, value)) = route.methods.iter().find(|(m, _)| m == method) {
                return RouteMatch::Found(value, values);
            }
            allowed.extend(route.methods.iter().map(|(m, _)| m.clone()));
        }
        if allowed.is_empty() {
            RouteMatch::NotFound
        } else {
            RouteMatch::MethodNotAllowed(allowed)
        }
    }
}

fn match_segments<'p>(segments: &[Segment], path: &'p str) -> Option<Vec<&'p str>> {
    let mut values = Vec::new();
    let mut parts = path.split('/').skip(1);
    for segment in segments {
        let part = parts.next()?;
        match segment {
            Segment::Literal(literal) if literal == part => {}
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

    #[test]
    fn static_and_param_routes_match() {
        let r = router();
        assert!(matches!(
            r.find(&Method::GET, "/users"),
            RouteMatch::Found(1, _)
        ));
        assert!(matches!(
            r.find(&Method::POST, "/users/"),
            RouteMatch::Found(2, _)
        ));
        match r.find(&Method::GET, "/users/a%20b/posts/7") {
            RouteMatch::Found(5, values) => assert_eq!(values, vec!["a%20b", "7"]),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            r.find(&Method::DELETE, "/users/9"),
            RouteMatch::Found(4, _)
        ));
    }

    #[test]
    fn wrong_method_and_unknown_paths_are_told_apart() {
        let r = router();
        match r.find(&Method::PUT, "/users/9") {
            RouteMatch::MethodNotAllowed(m) => assert_eq!(m, vec![Method::GET, Method::DELETE]),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            r.find(&Method::PUT, "/users"),
            RouteMatch::MethodNotAllowed(_)
        ));
        assert!(matches!(
            r.find(&Method::GET, "/users/9/x"),
            RouteMatch::NotFound
        ));
        assert!(matches!(
            r.find(&Method::GET, "/users//posts/1"),
            RouteMatch::NotFound
        ));
        assert!(matches!(
            r.find(&Method::GET, "/nope"),
            RouteMatch::NotFound
        ));
    }
}
