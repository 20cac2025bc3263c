//! pv-storage (being written).
