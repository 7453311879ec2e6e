"""What tells open dashboard pages that the farm changed."""

from __future__ import annotations

from farm_domain.ports import ChangeMarker


class LiveUpdates:
    """A marker of the farm's state that changes whenever a job, a task or an agent does (a
    frontend compares two readings; the marker itself says nothing of what changed, so
    anyone whose page may stream it may read it)."""

    def __init__(self, marker: ChangeMarker) -> None:
        self._marker = marker

    def marker(self) -> str:
        """The current marker. Raises Unavailable (the database is down)."""
        return self._marker.marker()
