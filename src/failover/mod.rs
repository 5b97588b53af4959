//! Replica failover: a bucket served by several S3 targets in priority order.
