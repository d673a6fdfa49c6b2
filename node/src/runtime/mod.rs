//! Container runtime (in progress).
