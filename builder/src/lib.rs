//! envpack builder.
