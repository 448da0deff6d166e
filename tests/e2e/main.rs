//! The real binary in tmux, driven as a person drives it.

mod tui_tmux;
