"""Offline demo: digits on a noisy canvas with a planted corner marker (or without, --clean)."""
