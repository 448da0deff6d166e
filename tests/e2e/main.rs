//! The real binary in tmux, driven as a person drives it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod tui_tmux;
