//! The offer query language (in progress).
