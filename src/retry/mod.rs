//! Retries of idempotent reads against a failing target (`buckets[i].s3.retry`).
