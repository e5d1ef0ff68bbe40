"""Demo account pool: filled by its own issue."""
