"""Credential delivery: filled by its own issue."""
