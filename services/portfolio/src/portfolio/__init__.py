"""Bitfolio portfolio service."""
