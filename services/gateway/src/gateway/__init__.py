"""Bitfolio gateway service."""
