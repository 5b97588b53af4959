use tower::Layer;

use super::AccessLogService;
use crate::telemetry::metrics::HTTP_REQUESTS_IN_FLIGHT;

/// Writes one access-log event and updates the request metrics per request.
///
/// Metric handles bind to the recorder installed when the service is made:
/// install a recorder before applying the layer (the binary does).
#[derive(Debug, Clone, Copy, Default)]
pub struct AccessLogLayer;

impl<S> Layer<S> for AccessLogLayer {
    type Service = AccessLogService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AccessLogService {
            inner,
            // Resolved once: the request path then only adds and subtracts.
            in_flight: metrics::gauge!(HTTP_REQUESTS_IN_FLIGHT),
        }
    }
}
