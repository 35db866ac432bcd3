"""Fixtures and helpers that build real things for tests: databases, a broker vhost, running services."""
