//! Which admin endpoint a method and path name: a `matchit` table.
//!
//! Path parameters are percent-decoded (`/admin/cache/purge/b/c%20d.txt`
//! names the key `c d.txt`); a key keeps its slashes. An empty bucket or key
//! (`/admin/cache/purge/`) names no endpoint, so a script whose variable is
//! empty gets a 404 instead of purging everything.

use http::Method;
use percent_encoding::percent_decode_str;

/// The admin API: path, endpoint, the one method it takes.
const TABLE: [(&str, Kind, &str); 7] = [
    ("/admin/reload", Kind::Reload, "POST"),
    ("/admin/status", Kind::Status, "GET"),
    ("/admin/cache/purge", Kind::Purge, "POST"),
    ("/admin/cache/purge/{bucket}", Kind::Purge, "POST"),
    ("/admin/cache/purge/{bucket}/{*key}", Kind::Purge, "POST"),
    ("/admin/cache/stats", Kind::Stats, "GET"),
    ("/admin/cache/stats/{bucket}", Kind::Stats, "GET"),
];

/// An admin request, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Endpoint {
    /// `POST /admin/reload`.
    Reload,
    /// `GET /admin/status`.
    Status,
    /// `POST /admin/cache/purge[/{bucket}[/{key…}]]`.
    Purge {
        bucket: Option<String>,
        key: Option<String>,
    },
    /// `GET /admin/cache/stats[/{bucket}]`.
    Stats { bucket: Option<String> },
}

/// Why a request names no endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Miss {
    /// No endpoint has this path.
    NotFound,
    /// The endpoint takes only the method `allow`.
    Method { allow: &'static str },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Reload,
    Status,
    Purge,
    Stats,
}

#[derive(Debug)]
struct Route {
    kind: Kind,
    method: &'static str,
}

/// The admin routes, built once per listener.
#[derive(Debug)]
pub(super) struct Routes {
    table: matchit::Router<Route>,
}

impl Routes {
    /// Builds the table; fails only if two of its paths conflict (a bug
    /// caught by the tests below).
    pub(super) fn new() -> Result<Self, matchit::InsertError> {
        let mut table = matchit::Router::new();
        for (path, kind, method) in TABLE {
            table.insert(path, Route { kind, method })?;
        }
        Ok(Self { table })
    }

    /// The endpoint `method` and `path` name.
    pub(super) fn resolve(&self, method: &Method, path: &str) -> Result<Endpoint, Miss> {
        let matched = self.table.at(path).map_err(|_| Miss::NotFound)?;
        let route = matched.value;
        if method.as_str() != route.method {
            return Err(Miss::Method {
                allow: route.method,
            });
        }
        let param = |name| matched.params.get(name).map(decode);
        Ok(match route.kind {
            Kind::Reload => Endpoint::Reload,
            Kind::Status => Endpoint::Status,
            Kind::Purge => Endpoint::Purge {
                bucket: param("bucket"),
                key: param("key"),
            },
            Kind::Stats => Endpoint::Stats {
                bucket: param("bucket"),
            },
        })
    }
}

fn decode(segment: &str) -> String {
    percent_decode_str(segment).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(method: Method, path: &str) -> Result<Endpoint, Miss> {
        Routes::new().unwrap().resolve(&method, path)
    }

    fn purge(bucket: Option<&str>, key: Option<&str>) -> Result<Endpoint, Miss> {
        Ok(Endpoint::Purge {
            bucket: bucket.map(str::to_owned),
            key: key.map(str::to_owned),
        })
    }

    #[test]
    fn purge_paths_name_all_a_bucket_or_an_object() {
        assert_eq!(
            resolve(Method::POST, "/admin/cache/purge"),
            purge(None, None)
        );
        assert_eq!(
            resolve(Method::POST, "/admin/cache/purge/products"),
            purge(Some("products"), None)
        );
        assert_eq!(
            resolve(Method::POST, "/admin/cache/purge/products/b/c%20d.txt"),
            purge(Some("products"), Some("b/c d.txt"))
        );
    }

    #[test]
    fn empty_segments_and_unknown_paths_are_not_found() {
        for path in [
            "/admin/cache/purge/",
            "/admin/cache/purge/products/",
            "/admin/cache/stats/products/key",
            "/admin/cache",
            "/admin/cachex",
            "/admin/nope",
            "/",
        ] {
            assert_eq!(resolve(Method::POST, path), Err(Miss::NotFound), "{path}");
        }
    }

    #[test]
    fn each_endpoint_takes_one_method() {
        assert_eq!(
            resolve(Method::GET, "/admin/reload"),
            Err(Miss::Method { allow: "POST" })
        );
        assert_eq!(
            resolve(Method::GET, "/admin/cache/purge/b"),
            Err(Miss::Method { allow: "POST" })
        );
        assert_eq!(
            resolve(Method::POST, "/admin/cache/stats"),
            Err(Miss::Method { allow: "GET" })
        );
        assert_eq!(resolve(Method::GET, "/admin/status"), Ok(Endpoint::Status));
        assert_eq!(
            resolve(Method::GET, "/admin/cache/stats/docs"),
            Ok(Endpoint::Stats {
                bucket: Some("docs".into())
            })
        );
    }
}
