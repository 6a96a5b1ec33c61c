//! Exchange routing (placeholder).
