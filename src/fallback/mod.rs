//! The 404 fallback: a missing key is looked up in a second bucket (`fallback_on_404`).
