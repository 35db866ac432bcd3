"""Bitfolio price service."""
