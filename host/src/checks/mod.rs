//! TODO module checks
