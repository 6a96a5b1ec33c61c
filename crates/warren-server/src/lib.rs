//! AMQP server (placeholder).
