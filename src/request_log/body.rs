use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;

use super::service::Exchange;
use crate::body::{BodyEnd, BodyWatcher};

/// Keeps a copy of a response body's first `max_body_size` bytes and writes
/// the response line once it has them (and knows whether more followed),
/// or once the body ends. The bytes stream on unchanged.
pub(super) struct Captured {
    line: Option<Line>,
}

/// The response line, waiting for its body bytes.
struct Line {
    exchange: Exchange,
    status: StatusCode,
    latency: Duration,
    headers: Vec<String>,
    captured: Vec<u8>,
}

impl Captured {
    pub(super) fn new(
        exchange: Exchange,
        status: StatusCode,
        latency: Duration,
        headers: Vec<String>,
    ) -> Self {
        Self {
            line: Some(Line {
                exchange,
                status,
                latency,
                headers,
                captured: Vec::new(),
            }),
        }
    }

    /// Writes the line (once) with what was captured.
    fn write(&mut self, truncated: bool) {
        if let Some(line) = self.line.take() {
            let text = String::from_utf8_lossy(&line.captured);
            line.exchange.log_response(
                line.status,
                line.latency,
                &line.headers,
                Some((&text, truncated)),
            );
        }
    }
}

impl BodyWatcher for Captured {
    fn on_data(&mut self, data: &Bytes) {
        let Some(line) = &mut self.line else {
            return;
        };
        let room = line.exchange.max_body_size() - line.captured.len();
        // A full capture waits for one more byte (truncated) or the end.
        if data.len() > room {
            line.captured.extend_from_slice(&data[..room]);
            self.write(true);
        } else {
            line.captured.extend_from_slice(data);
        }
    }

    fn on_end(mut self, end: BodyEnd<'_>) {
        // Failed or abandoned: the access log says so; the line shows what
        // was sent and that the body did not end there.
        self.write(!matches!(end, BodyEnd::Complete));
    }
}
