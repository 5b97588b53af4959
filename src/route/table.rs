use std::collections::HashMap;

/// A segment trie from path prefixes to what is mounted there (in the
/// proxy, each bucket's route and stack).
#[derive(Debug)]
pub struct RouteTable<T> {
    root: Node<T>,
    len: usize,
}

#[derive(Debug)]
struct Node<T> {
    route: Option<T>,
    children: HashMap<Box<str>, Node<T>>,
}

impl<T> Default for Node<T> {
    fn default() -> Self {
        Self {
            route: None,
            children: HashMap::new(),
        }
    }
}

impl<T> RouteTable<T> {
    /// Builds the table from `(path prefix, value)` pairs; a later prefix
    /// equal to an earlier one replaces it (configuration validation refuses
    /// duplicates before this point).
    pub fn new<P: AsRef<str>>(routes: impl IntoIterator<Item = (P, T)>) -> Self {
        let mut table = Self {
            root: Node::default(),
            len: 0,
        };
        for (prefix, route) in routes {
            let mut node = &mut table.root;
            for segment in prefix.as_ref().split('/').filter(|s| !s.is_empty()) {
                node = node.children.entry(segment.into()).or_default();
            }
            node.route = Some(route);
            table.len += 1;
        }
        table
    }

    /// The number of routes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the table has no routes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Finds the route with the longest prefix of `path` (a sanitized path) and
    /// returns it with the rest of the path: the object key, without its leading `/`.
    pub fn lookup<'p>(&self, path: &'p str) -> Option<(&T, &'p str)> {
        let mut node = &self.root;
        let mut best = node.route.as_ref().map(|r| (r, 0));
        let mut pos = 0;
        // Sanitized paths start with '/' and hold no empty segments (except a trailing one).
        while pos < path.len() {
            let rest = &path[pos + 1..];
            let end = rest.find('/').unwrap_or(rest.len());
            let segment = &rest[..end];
            if segment.is_empty() {
                break;
            }
            let Some(child) = node.children.get(segment) else {
                break;
            };
            node = child;
            pos += 1 + end;
            if let Some(route) = &node.route {
                best = Some((route, pos));
            }
        }
        best.map(|(route, at)| {
            let key = path[at..].strip_prefix('/').unwrap_or(&path[at..]);
            (route, key)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(name: &str, prefix: &str) -> (String, String) {
        (prefix.to_owned(), name.to_owned())
    }

    fn find<'p>(t: &RouteTable<String>, p: &'p str) -> Option<(String, &'p str)> {
        t.lookup(p).map(|(r, k)| (r.clone(), k))
    }

    #[test]
    fn longest_prefix_wins_on_segment_boundaries() {
        let t = RouteTable::new([
            route("products", "/products"),
            route("images", "/products/images"),
            route("deep", "/a/b/c"),
        ]);
        assert_eq!(
            find(&t, "/products/a.png"),
            Some(("products".into(), "a.png"))
        );
        assert_eq!(
            find(&t, "/products/images/x/y.png"),
            Some(("images".into(), "x/y.png"))
        );
        assert_eq!(
            find(&t, "/products/imagesX/y.png"),
            Some(("products".into(), "imagesX/y.png"))
        );
        assert_eq!(find(&t, "/productsX/a.png"), None);
        assert_eq!(find(&t, "/products"), Some(("products".into(), "")));
        assert_eq!(find(&t, "/products/"), Some(("products".into(), "")));
        assert_eq!(find(&t, "/a/b/x"), None);
        assert_eq!(find(&t, "/a/b/c/d/"), Some(("deep".into(), "d/")));
        assert_eq!(find(&t, "/"), None);
    }

    #[test]
    fn root_prefix_catches_everything_else() {
        let t = RouteTable::new([route("root", "/"), route("p", "/p")]);
        assert_eq!(find(&t, "/x/y"), Some(("root".into(), "x/y")));
        assert_eq!(find(&t, "/p/y"), Some(("p".into(), "y")));
        assert_eq!(find(&t, "/"), Some(("root".into(), "")));
    }

    #[test]
    fn a_thousand_routes() {
        let t = RouteTable::new((0..1000).map(|i| route(&format!("b{i}"), &format!("/b{i}"))));
        assert_eq!(t.len(), 1000);
        assert_eq!(find(&t, "/b999/k"), Some(("b999".into(), "k")));
    }
}
