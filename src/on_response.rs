//! The response future of layers that act once the inner service has made
//! its response: they keep what they learnt from the request in a hook and
//! hand it the response (usually to wrap its body in a
//! [`crate::body::WatchedBody`]). Errors pass through untouched.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::Response;
use pin_project_lite::pin_project;

use crate::body::ProxyBody;

/// What a layer does with a response, given what it kept of the request.
pub trait OnResponse {
    /// Called once with the inner service's response; returns the response
    /// to send on.
    fn on_response(self, response: Response<ProxyBody>) -> Response<ProxyBody>;
}

pin_project! {
    /// Polls `inner`, then hands its response to the hook (if any).
    pub struct OnResponseFuture<F, H> {
        #[pin]
        inner: F,
        hook: Option<H>,
    }
}

impl<F, H> OnResponseFuture<F, H> {
    /// `inner`'s response goes to `hook`; with `None` it passes through.
    pub fn new(inner: F, hook: Option<H>) -> Self {
        Self { inner, hook }
    }
}

impl<F, H> std::fmt::Debug for OnResponseFuture<F, H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnResponseFuture")
            .field("hooked", &self.hook.is_some())
            .finish_non_exhaustive()
    }
}

impl<F, H, E> Future for OnResponseFuture<F, H>
where
    F: Future<Output = Result<Response<ProxyBody>, E>>,
    H: OnResponse,
{
    type Output = Result<Response<ProxyBody>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = std::task::ready!(this.inner.poll(cx));
        Poll::Ready(match this.hook.take() {
            Some(hook) => result.map(|response| hook.on_response(response)),
            None => result,
        })
    }
}
