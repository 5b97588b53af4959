//! Per-bucket IP allow and block lists (`buckets[i].ip_filter`).
