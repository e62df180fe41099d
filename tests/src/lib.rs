//! Network-namespace lab helpers for the end-to-end tests.
