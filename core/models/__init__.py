"""Pydantic models: the single source of every schema (API bodies, queue envelopes, events)."""
