"""Per-resource parsing and rendering: one module beside each resource module of ``farm_http``."""
