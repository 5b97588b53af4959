//! Static website hosting per bucket (`buckets[i].website`), off by default.
//!
//! A key rewrite and a 404 fallback, the way S3's website endpoints behave:
//!
//! - a path ending in `/`, and the bare prefix, name the index document
//!   (`docs/` → `docs/index.html`, `/site` → `index.html`);
//! - a key that does not exist (a 404 from below) is answered with the
//!   error document and status 404 (when the error document is missing
//!   too, the plain 404 stands);
//! - with `spa_fallback`, a missing key whose last segment has no file
//!   extension is answered with the root index document and its own status
//!   (200), so a single-page app's client-side routes load the app.
//!
//! The layer sits above the cache, so the index and error documents are
//! looked up, cached and served under their real keys like any object
//! (ranges, conditional requests, `X-Cache`), and below authentication
//! and authorization, which decide on the path the client asked for. The
//! route lets the bare prefix through only to buckets with a website
//! ([`crate::route::BucketRoute::serves_bare_prefix`]).

pub mod config;
mod layer;
mod service;

pub use config::WebsiteConfig;
pub use layer::WebsiteLayer;
pub use service::Website;
