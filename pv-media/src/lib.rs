//! pv-media (being written).
