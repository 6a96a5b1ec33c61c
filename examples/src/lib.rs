//! Examples (placeholder).
