"""Typed wire models of the E2B API: snake_case in Python, exact wire names on the wire."""
