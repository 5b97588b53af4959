use tower::Layer;

use super::ResolveClient;
use crate::ip_filter::IpSet;

/// Replaces the [`super::ClientIp`] extension with the client the trusted
/// proxies in front report (see the module docs).
#[derive(Debug, Clone)]
pub struct ClientAddrLayer {
    trusted: IpSet,
}

impl ClientAddrLayer {
    /// The layer trusting `trusted`, or `None` when it trusts nobody: the
    /// peer address the listener inserted is then the client already.
    pub fn new(trusted: &IpSet) -> Option<Self> {
        (!trusted.is_empty()).then(|| Self {
            trusted: trusted.clone(),
        })
    }
}

impl<S> Layer<S> for ClientAddrLayer {
    type Service = ResolveClient<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ResolveClient {
            inner,
            trusted: self.trusted.clone(),
        }
    }
}
