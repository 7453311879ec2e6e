"""The Falcon frontend: a thin HTTP layer over the domain's services."""

from farm_http.app import HttpOptions, create_app

__all__ = ["HttpOptions", "create_app"]
