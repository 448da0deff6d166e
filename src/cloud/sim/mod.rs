//! The simulator: a two-region in-memory world implementing every port trait.
