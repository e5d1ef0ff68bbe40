"""Bonuses: filled by its own issue."""
