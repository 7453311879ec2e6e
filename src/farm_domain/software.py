"""Software and its versions, as agents have them and jobs require them."""

from __future__ import annotations

import attrs


@attrs.frozen
class SoftwareVersion:
    """A version of a piece of software; higher ``rank`` means newer."""

    id: int
    software_id: int
    version: str
    rank: int


@attrs.frozen
class Software:
    id: int
    name: str
    versions: tuple[SoftwareVersion, ...] = ()
