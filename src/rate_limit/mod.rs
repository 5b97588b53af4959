//! Rate limits: global, per client address, per bucket and per user.
