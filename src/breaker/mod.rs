//! The per-target circuit breaker (`buckets[i].s3.circuit_breaker`).
