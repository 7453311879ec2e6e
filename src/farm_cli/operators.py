"""The operator commands: agents, jobs, software and events, through the farm's API.

Every command calls ``FarmClient`` and prints from the API's answers (``--json``: those answers
as the API gives them), whether the client reaches a master over the network (remote mode) or
the master's app in this process (local mode, ``farm_cli.local``). A refusal is the client's
``FarmError``; ``main`` turns it into one line on stderr and the exit status.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import uuid
from typing import Any

from farm_cli import controls, credentials, explain, output
from farm_cli.arguments import InvalidArgument, agent_id, find_job
from farm_client import Agent, FarmClient, Job, NotFound, Requirement

_FRAMES = re.compile(r"^(-?\d+(?:\.\d+)?)(?:-(-?\d+(?:\.\d+)?))?(?:x(\d+(?:\.\d+)?))?$")
_REQUIREMENT_NAME = re.compile(r"^\s*([^<>=,]+?)\s*(?=$|[<>=])")
_BOUND = re.compile(r"^\s*(>=|<=|==)\s*([^<>=,\s][^<>=,]*?)\s*$")
_AGENT_STATES = ("online", "running", "offline", "disabled")
_JOB_STATES = ("queued", "running", "paused", "done", "failed", "canceled")
_BUILT_IN_JOBTYPES = {
    "command": "runs a command per frame",
    "blender": "renders each frame of a .blend with Blender",
}


def parse_frames(text: str) -> tuple[float, float, float]:
    """``1-100x2`` → (1, 100, 2); ``5`` → (5, 5, 1)."""
    match = _FRAMES.match(text.strip())
    if match is None:
        raise InvalidArgument(f"--frames {text!r}: use START, START-END or START-ENDxBY")
    start = float(match.group(1))
    end = float(match.group(2)) if match.group(2) else start
    by = float(match.group(3)) if match.group(3) else 1.0
    return start, end, by


def parse_requirement(text: str) -> Requirement:
    """``blender``, ``blender>=2.79``, ``blender<=4.2``, ``blender==2.79`` or a range,
    ``blender>=2.79,<=4.2`` (bounds inclusive)."""
    usage = f"--requires {text!r}: use NAME, NAME>=V, NAME<=V, NAME==V or NAME>=V,<=W"
    match = _REQUIREMENT_NAME.match(text)
    if match is None:
        raise InvalidArgument(usage)
    name, rest = match.group(1), text[match.end() :]
    bounds: dict[str, str] = {}
    for part in rest.split(",") if rest.strip() else ():
        bound = _BOUND.match(part)
        if bound is None:
            raise InvalidArgument(usage)
        operator, version = bound.groups()
        for side in {">=": ("min",), "<=": ("max",), "==": ("min", "max")}[operator]:
            if side in bounds:
                raise InvalidArgument(f"--requires {text!r}: two {side}imum versions")
            bounds[side] = version
    return Requirement(software=name, min_version=bounds.get("min"), max_version=bounds.get("max"))


def add_parsers(commands: Any) -> None:
    agents = commands.add_parser(
        "agents", help="list, show, disable, enable, delete agents; their software"
    )
    agent_commands = agents.add_subparsers(dest="action", required=True)
    listing = agent_commands.add_parser("list", help="agents matching every filter")
    for flag in ("min-ram", "max-ram", "min-cpus", "max-cpus", "limit", "offset"):
        listing.add_argument(f"--{flag}", type=int)
    listing.add_argument("--hostname")
    listing.add_argument("--state", choices=_AGENT_STATES)
    listing.add_argument("--search", help="a part of the host name or address")
    listing.add_argument("--tag")
    listing.add_argument("--sort", choices=("hostname", "state", "ram", "cpus", "last_heard"))
    listing.add_argument("--order", choices=("asc", "desc"))
    show = agent_commands.add_parser("show", help="one agent")
    show.add_argument("agent_id")
    for action in ("disable", "enable", "delete"):
        each = agent_commands.add_parser(action, help=f"{action} agents")
        each.add_argument("agent_ids", nargs="+")
    credentials.add_agent_parser(agent_commands)
    agent_why = agent_commands.add_parser("why", help="why an agent is idle, or what it would get")
    agent_why.add_argument("agent_id")
    for action, verb in (("add-software", "record that"), ("remove-software", "forget that")):
        each = agent_commands.add_parser(
            action, help=f"{verb} an agent has a version of catalogue software installed"
        )
        each.add_argument("agent_id")
        each.add_argument("software")
        each.add_argument("version")

    jobs = commands.add_parser(
        "jobs",
        help="submit, list, show, control (retry, skip, stop, cancel, pause, resume, requeue), "
        "unblock, delete",
    )
    job_commands = jobs.add_subparsers(dest="action", required=True)
    submit = job_commands.add_parser("submit", help="submit a job")
    submit.add_argument("--title", required=True)
    submit.add_argument(
        "--jobtype",
        default="command",
        help="job type name (default: command; command and blender are created when missing)",
    )
    submit.add_argument("--frames", required=True, help="START, START-END or START-ENDxBY")
    for option in ("batch", "priority", "weight", "requeue", "ram", "cpus"):
        submit.add_argument(
            f"--{option}",
            type=int,
            help="MB each task needs" if option == "ram" else "default: the master's",
        )
    submit.add_argument(
        "--command",
        dest="command_line",
        help="for the command job type: the argv, {frame} "
        "{start} {end} substituted (a shell-style string)",
    )
    submit.add_argument(
        "--job-data",
        dest="data_json",
        help="the job's data as a JSON object, e.g. for the blender job type "
        '\'{"file": "/farm/shot.blend", "output": "/farm/out/shot_####"}\'',
    )
    submit.add_argument(
        "--requires",
        action="append",
        default=[],
        help="software requirement: NAME, NAME>=V, NAME<=V, NAME==V or NAME>=V,<=W",
    )
    submit.add_argument("--tag", action="append", default=[], help="a label for the job")
    job_list = job_commands.add_parser("list", help="jobs, newest first")
    job_list.add_argument("--state", choices=_JOB_STATES)
    job_list.add_argument("--title")
    job_list.add_argument("--search", help="a part of the title")
    job_list.add_argument("--user", help="who submitted it, or its user")
    job_list.add_argument("--type", dest="jobtype", help="its job type")
    job_list.add_argument("--tag")
    job_list.add_argument("--sort", choices=("id", "title", "priority", "state", "owner"))
    job_list.add_argument("--order", choices=("asc", "desc"))
    job_list.add_argument("--limit", type=int, default=100)
    job_list.add_argument("--offset", type=int)
    named = "job id or title"
    for action, what in (
        ("show", "show a job"),
        ("delete", "delete a job"),
        ("blocklist", "the agents a job's failures have blocked (or nearly)"),
        ("why", "whether a job can run now and, per agent, why not"),
    ):
        job_commands.add_parser(action, help=what).add_argument("job", help=named)
    unblock = job_commands.add_parser(
        "unblock", help="offer a job again to an agent it is blocked for (or to every agent)"
    )
    unblock.add_argument("job", help=named)
    whom = unblock.add_mutually_exclusive_group(required=True)
    whom.add_argument("agent", nargs="?", help="agent id")
    whom.add_argument("--all", action="store_true", help="every agent blocked for the job")
    controls.add_parsers(job_commands)
    priority = job_commands.add_parser("priority", help="change a job's priority")
    priority.add_argument("job", help=named)
    priority.add_argument("priority", type=int)

    software = commands.add_parser("software", help="the software catalogue")
    software_commands = software.add_subparsers(dest="action", required=True)
    software_commands.add_parser("list", help="software and versions")
    add = software_commands.add_parser("add", help="add software with versions, oldest first")
    add.add_argument("name")
    add.add_argument("versions", nargs="*")
    remove = software_commands.add_parser("delete", help="delete software")
    remove.add_argument("name")
    add_version = software_commands.add_parser(
        "add-version", help="add a version to software (newer than every other, or --rank)"
    )
    add_version.add_argument("name")
    add_version.add_argument("version")
    add_version.add_argument("--rank", type=int, help="orders the versions: newer is higher")
    remove_version = software_commands.add_parser("delete-version", help="delete a version")
    remove_version.add_argument("name")
    remove_version.add_argument("version")

    events = commands.add_parser("events", help="the audit trail: who changed what, newest first")
    events.add_argument("--target", help="job:12, agent:<id>, software:<name>…")
    events.add_argument("--actor", help="an identity's name")
    events.add_argument("--since", help="an ISO-8601 time (UTC unless it names a zone)")
    events.add_argument("--limit", type=int, help="1 to 1000 (default 100)")


COMMANDS = ("agents", "jobs", "software", "events")
LOCAL_ONLY = {("agents", "revoke-token")}
"""Operator actions with no API route: local mode only (like ``tokens`` and ``users``)."""


def run(client: FarmClient, args: argparse.Namespace) -> int:
    handler = {"agents": _agents, "jobs": _jobs, "software": _software, "events": _events}[
        args.command
    ]
    return handler(client, args)


def _wants_json(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "json", False))


def _events(client: FarmClient, args: argparse.Namespace) -> int:
    events = client.events(target=args.target, actor=args.actor, since=args.since, limit=args.limit)
    if _wants_json(args):
        output.emit_json([e.raw for e in events])
        return 0
    output.table(
        ["at", "actor", "role", "action", "target", "before", "after"],
        [
            (e.at, e.actor, e.role, e.action, e.target, _compact(e.before), _compact(e.after))
            for e in events
        ],
    )
    return 0


def _compact(fields: Any) -> str | None:
    if not fields:
        return None
    return " ".join(f"{name}={value}" for name, value in fields.items())


def _agent_states(client: FarmClient, filters: dict[str, Any]) -> dict[uuid.UUID, str]:
    """Each listed agent's state: the listing has none, so one filtered listing per state."""
    return {
        agent.id: state
        for state in _AGENT_STATES
        for agent in client.agents(state=state, **filters)
    }


def _agents(client: FarmClient, args: argparse.Namespace) -> int:
    if args.action == "list":
        filters = {
            "min_ram": args.min_ram,
            "max_ram": args.max_ram,
            "min_cpus": args.min_cpus,
            "max_cpus": args.max_cpus,
            "hostname": args.hostname,
            "search": args.search,
            "tag": args.tag,
            "sort": args.sort,
            "order": args.order,
        }
        agents = client.agents(state=args.state, limit=args.limit, offset=args.offset, **filters)
        if _wants_json(args):
            output.emit_json([a.raw for a in agents])
            return 0
        if args.state is not None:
            states = {a.id: args.state for a in agents}
        else:
            states = _agent_states(client, filters) if agents else {}
        output.table(
            ["id", "hostname", "state", "port", "remote ip"],
            [(a.id, a.hostname, states.get(a.id), a.port, a.remote_ip) for a in agents],
        )
        return 0
    if args.action == "show":
        agent = client.agent(agent_id(args.agent_id))
        if _wants_json(args):
            output.emit_json(agent.raw)
            return 0
        _show_agent(client, agent)
        return 0
    if args.action == "why":
        explain.print_agent(client.explain_agent(agent_id(args.agent_id)), _wants_json(args))
        return 0
    if args.action in ("add-software", "remove-software"):
        which = agent_id(args.agent_id)
        if args.action == "add-software":
            client.add_agent_software(which, args.software, args.version)
            print(f"agent {which}: has {args.software} {args.version}")
        else:
            client.remove_agent_software(which, args.software, args.version)
            print(f"agent {which}: no longer has {args.software} {args.version}")
        return 0
    ids = [agent_id(text) for text in args.agent_ids]
    for done, each in enumerate(ids, 1):
        if args.action == "delete":
            client.delete_agent(client.agent(each))  # an unknown agent is an error here
        elif args.action == "disable":
            client.disable_agent(each)
        else:
            client.enable_agent(each)
        if len(ids) > 1:
            output.progress(done, len(ids), f"{args.action} agents")
    print(f"{args.action}d {len(ids)} agent(s)")
    return 0


def _show_agent(client: FarmClient, agent: Agent) -> None:
    output.fields(
        [
            ("id", agent.id),
            ("hostname", agent.hostname),
            ("state", agent.state),
            ("address", f"{agent.remote_ip}:{agent.port} ({agent.use_address})"),
            ("ram", f"{agent.free_ram} MB free of {agent.ram} MB"),
            ("cpus", agent.cpus),
            ("os", agent.os_fullname),
            ("version", agent.version),
            ("last heard from", agent.last_heard_from),
            ("software", [f"{s.software} {s.version}" for s in agent.software]),
            ("gpus", agent.gpus),
            ("tasks", len(client.agent_tasks(agent))),
            ("dispatch", agent.not_callable_because or "callable"),
        ]
    )


def _command(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError as error:
        raise InvalidArgument(f"--command {text!r}: {error}") from None


def _job_data(args: argparse.Namespace) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if args.data_json:
        try:
            given = json.loads(args.data_json)
        except ValueError as error:
            raise InvalidArgument(f"--job-data is not JSON: {error}") from None
        if not isinstance(given, dict):
            raise InvalidArgument("--job-data must be a JSON object")
        data.update(given)
    if args.command_line:
        data["command"] = _command(args.command_line)
    elif args.jobtype == "command":
        raise InvalidArgument("--command is required for the command job type")
    return data


def _submit(client: FarmClient, args: argparse.Namespace) -> int:
    start, end, by = parse_frames(args.frames)
    data = _job_data(args)
    requirements = [parse_requirement(r) for r in args.requires]
    if args.jobtype in _BUILT_IN_JOBTYPES:
        try:
            client.jobtype(args.jobtype)
        except NotFound:
            client.create_jobtype(args.jobtype, description=_BUILT_IN_JOBTYPES[args.jobtype])
    job = client.submit_job(
        args.title,
        args.jobtype,
        start,
        end,
        by=by,
        batch=args.batch,
        priority=args.priority,
        weight=args.weight,
        requeue=args.requeue,
        ram=args.ram,
        cpus=args.cpus,
        data=data,
        tags=args.tag or None,
        software_requirements=requirements or None,
    )
    if _wants_json(args):
        output.emit_json(job.raw)
    else:
        print(f"submitted job {job.id} ({job.title}) with {sum(job.tasks.values())} task(s)")
    return 0


def _list_jobs(client: FarmClient, args: argparse.Namespace) -> int:
    jobs = client.jobs(
        state=args.state,
        title=args.title,
        limit=args.limit,
        offset=args.offset,
        search=args.search,
        user=args.user,
        jobtype=args.jobtype,
        tag=args.tag,
        sort=args.sort,
        order=args.order,
    )
    if _wants_json(args):
        output.emit_json([j.raw for j in jobs])
        return 0
    output.table(
        ["id", "title", "state", "priority", "done", "running", "queued", "failed"],
        [
            (
                j.id,
                j.title,
                j.state,
                j.priority,
                j.tasks.get("done", 0),
                j.tasks.get("running", 0) + j.tasks.get("assigned", 0),
                j.tasks.get("queued", 0),
                j.tasks.get("failed", 0),
            )
            for j in jobs
        ],
    )
    return 0


def _show_job(job: Job) -> None:
    output.fields(
        [
            ("id", job.id),
            ("title", job.title),
            ("state", job.state),
            ("job type", f"{job.jobtype} v{job.jobtype_version}"),
            ("frames", f"{job.start:g}-{job.end:g} by {job.by:g}" if _framed(job) else None),
            ("priority", job.priority),
            ("weight", job.weight),
            ("batch", job.batch),
            ("requires", [_requirement_text(r) for r in job.software_requirements]),
            ("submitted", job.time_submitted),
            ("finished", job.time_finished),
            ("reason", job.reason),
            *[(f"tasks {state}", count) for state, count in job.tasks.items()],
        ]
    )


def _framed(job: Job) -> bool:
    return job.start is not None and job.end is not None and job.by is not None


def _requirement_text(requirement: Requirement) -> str:
    low, high = requirement.min_version, requirement.max_version
    if low is not None and low == high:
        return f"{requirement.software}=={low}"
    bounds = [f">={low}"] * (low is not None) + [f"<={high}"] * (high is not None)
    return requirement.software + ",".join(bounds)


def _jobs(client: FarmClient, args: argparse.Namespace) -> int:
    if args.action == "submit":
        return _submit(client, args)
    if args.action == "list":
        return _list_jobs(client, args)
    if args.action in controls.ACTIONS:
        return controls.run(client, args)
    job = find_job(client, args.job)
    if args.action == "show":
        if _wants_json(args):
            output.emit_json(job.raw)
        else:
            _show_job(job)
        return 0
    if args.action == "why":
        explain.print_job(client.explain_job(job), _wants_json(args))
        return 0
    if args.action == "blocklist":
        blocks = client.blocklist(job)
        if _wants_json(args):
            output.emit_json([b.raw for b in blocks])
        else:
            output.table(
                ["agent", "failures", "blocked", "refused", "updated"],
                [(b.agent_id, b.failures, b.blocked, b.refused, b.updated_on) for b in blocks],
            )
        return 0
    if args.action == "unblock":
        if args.all:
            count = client.unblock_all(job)
        else:
            agent = agent_id(args.agent)
            count = int(agent in {b.agent_id for b in client.blocklist(job)})
            client.unblock(job, agent)
        print(f"job {job.id}: {count} agent(s) unblocked")
        return 0
    if args.action == "priority":
        client.set_priority(job, args.priority)
    else:
        client.delete_job(job)
    print(f"job {job.id}: {args.action} done")
    return 0


def _software(client: FarmClient, args: argparse.Namespace) -> int:
    if args.action == "list":
        everything = client.software_list()
        if _wants_json(args):
            output.emit_json([s.raw for s in everything])
        else:
            output.table(
                ["software", "versions"],
                [(s.name, " ".join(v.version for v in s.versions)) for s in everything],
            )
        return 0
    if args.action == "add":
        created = client.create_software(args.name, args.versions)
        print(f"added {created.name} with {len(created.versions)} version(s)")
        return 0
    if args.action == "add-version":
        version = client.add_software_version(args.name, args.version, args.rank)
        print(f"added {args.name} {version.version} (rank {version.rank})")
        return 0
    if args.action == "delete-version":
        client.software_version(args.name, args.version)  # an unknown version is an error here
        client.delete_software_version(args.name, args.version)
        print(f"deleted {args.name} {args.version}")
        return 0
    client.software(args.name)  # an unknown name is an error here
    client.delete_software(args.name)
    print(f"deleted {args.name}")
    return 0
