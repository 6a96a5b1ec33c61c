//! The broker model (placeholder).
