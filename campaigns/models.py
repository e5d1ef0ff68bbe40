"""Campaigns: filled by its own issue."""
