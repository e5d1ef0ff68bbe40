"""Licensing: filled by its own issue."""
