//! TODO module config
