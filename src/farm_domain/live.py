"""What tells open dashboard pages that the farm changed."""

from __future__ import annotations

from farm_domain.ports import ChangeMarker


class LiveUpdates:
    """A marker of the farm's state that changes whenever a job, a task (its state, agent or
    progress) or an agent (its state, disabled) does, and not with a heartbeat that changes
    nothing shown (a frontend compares two readings; the marker itself says nothing of what
    changed, so anyone whose page may stream it may read it). Read once a second by every web
    worker with a listening page: it must cost the same however many tasks the farm keeps."""

    def __init__(self, marker: ChangeMarker) -> None:
        self._marker = marker

    def marker(self) -> str:
        """The current marker. Raises Unavailable (the database is down)."""
        return self._marker.marker()
