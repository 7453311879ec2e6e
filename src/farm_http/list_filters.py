"""The filters of the job and agent lists as query strings: one parsing for the API's lists
(``GET /api/v1/jobs``, ``GET /api/v1/agents``) and the dashboard's pages, so a dashboard URL's
filters mean the same on the API. The filter objects are the domain's ``JobQuery`` and
``AgentQuery``; paging is each caller's (``limit``/``offset`` on the API, ``page`` on the
dashboard).

The shared names: ``q`` (a part of the title, or of an agent's host name or address), ``state``,
``tag``, ``user`` and ``jobtype`` (jobs), ``sort`` (a column) and ``order`` (``asc``/``desc``).
A value given twice, too long, or not one of its choices is a ValidationError (400) naming the
argument; blanks around a text are dropped and an empty text is no filter.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Annotated, Any, TypeVar

import attrs

from farm_domain.agents import MAX_SEARCH, AgentQuery, AgentSort
from farm_domain.enums import AgentState, WorkState
from farm_domain.errors import ValidationError
from farm_domain.work import JobQuery, JobSort
from farm_http.conversion import url_argument_error
from farm_http.openapi import Json

Params = Mapping[str, str | list[str]]

MAX_TAG = 64
MAX_USER = 255
MAX_JOBTYPE = 64
MAX_TITLE = 255

QUEUED = "queued"
"""A job's state name for no state (waiting for agents)."""


class Order(enum.Enum):
    ASC = "asc"
    DESC = "desc"


ORDERS = {o.value: o for o in Order}
AGENT_SORTS = {s.value: s for s in AgentSort}
AGENT_STATES = {s.label: s for s in AgentState}
JOB_SORTS = {s.value: s for s in JobSort}
JOB_STATES: dict[str, WorkState | None] = {QUEUED: None, **{s.value: s for s in WorkState}}

# Their declarations in the OpenAPI document (the query TypedDicts next to the resources).
SearchText = Annotated[str, Json(maxLength=MAX_SEARCH)]
TagText = Annotated[str, Json(maxLength=MAX_TAG)]
UserText = Annotated[str, Json(maxLength=MAX_USER)]
JobTypeText = Annotated[str, Json(maxLength=MAX_JOBTYPE)]
TitleText = Annotated[str, Json(maxLength=MAX_TITLE)]
OrderName = Annotated[str, Json(enum=list(ORDERS))]
JobSortName = Annotated[str, Json(enum=list(JOB_SORTS))]
AgentSortName = Annotated[str, Json(enum=list(AGENT_SORTS))]


def one(params: Params, name: str) -> str | None:
    """The argument's value; given more than once is a ValidationError."""
    value = params.get(name)
    if isinstance(value, list):
        raise url_argument_error(name, "given more than once")
    return value


def text(params: Params, name: str, longest: int) -> str | None:
    """A text argument without surrounding blanks, empty as none, at most ``longest``."""
    value = (one(params, name) or "").strip()
    if len(value) > longest:
        raise url_argument_error(name, f"at most {longest} characters")
    return value or None


Choice = TypeVar("Choice")


def choice(params: Params, name: str, choices: Mapping[str, Choice]) -> Choice | None:
    """One of ``choices`` by its name (none when absent or empty)."""
    value = text(params, name, 32)
    if value is None:
        return None
    if value not in choices:
        raise url_argument_error(name, f"must be one of {', '.join(choices)}, not {value!r}")
    return choices[value]


def _descending(params: Params, default: Order) -> bool:
    return (choice(params, "order", ORDERS) or default) is Order.DESC


def job_filters(params: Params) -> JobQuery:
    """The jobs' filters and order (newest first by default), without paging."""
    state_name = text(params, "state", 32)
    if state_name is not None and state_name not in JOB_STATES:
        raise url_argument_error("state", f"`{state_name}` is not a valid state")
    return JobQuery(
        state=JOB_STATES[state_name] if state_name else None,
        queued=state_name == QUEUED,
        title=_title(params),
        text=text(params, "q", MAX_SEARCH),
        user=text(params, "user", MAX_USER),
        jobtype=text(params, "jobtype", MAX_JOBTYPE),
        tag=text(params, "tag", MAX_TAG),
        sort=choice(params, "sort", JOB_SORTS) or JobSort.ID,
        descending=_descending(params, Order.DESC),
    )


def _title(params: Params) -> str | None:
    """An exact title, as given (a title may begin or end with blanks)."""
    value = one(params, "title")
    if value is not None and len(value) > MAX_TITLE:
        raise url_argument_error("title", f"at most {MAX_TITLE} characters")
    return value


def job_filter_values(query: JobQuery) -> dict[str, str | None]:
    """The arguments that give ``query``'s filters and order back (defaults left out)."""
    return {
        "q": query.text,
        "state": QUEUED if query.queued else (query.state.value if query.state else None),
        "title": query.title,
        "user": query.user,
        "jobtype": query.jobtype,
        "tag": query.tag,
        "sort": query.sort.value if query.sort is not JobSort.ID else None,
        "order": None if query.descending else Order.ASC.value,
    }


def agent_filters(params: Params, base: AgentQuery | None = None) -> AgentQuery:
    """The agents' search, state, tag and order (by host name by default) over ``base`` (the
    API's own filters), without paging. A state is named by its label (``disabled`` too)."""
    state = text(params, "state", 32)
    try:
        parsed = None if state is None else AgentState.parse(state, "state")
    except ValidationError as error:
        raise url_argument_error("state", error.message) from None
    changes: dict[str, Any] = {
        "text": text(params, "q", MAX_SEARCH),
        "state": parsed,
        "tag": text(params, "tag", MAX_TAG),
        "sort": choice(params, "sort", AGENT_SORTS) or AgentSort.HOSTNAME,
        "descending": _descending(params, Order.ASC),
    }
    return attrs.evolve(base or AgentQuery(), **changes)


def agent_filter_values(query: AgentQuery) -> dict[str, str | None]:
    """The arguments that give ``query``'s search, state, tag and order back (defaults left
    out)."""
    return {
        "q": query.text,
        "state": query.state.label if query.state else None,
        "tag": query.tag,
        "sort": query.sort.value if query.sort is not AgentSort.HOSTNAME else None,
        "order": Order.DESC.value if query.descending else None,
    }
