//! Unpacker.
