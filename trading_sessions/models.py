"""Trading sessions: filled by its own issue."""
