"""Adapters: what implements the domain's ports (SQLAlchemy, Huey, HTTP clients, settings)."""
