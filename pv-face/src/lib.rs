//! pv-face (being written).
