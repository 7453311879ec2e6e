"""The operator commands: agents, jobs and software, driven through the domain services."""

from __future__ import annotations

import argparse
import getpass
import json
import re
import shlex
import uuid
from typing import Any

import attrs

from farm_cli import controls, credentials, explain, output
from farm_domain.access import Identity
from farm_domain.agents import AgentChanges, AgentQuery
from farm_domain.catalogue import VersionSpec
from farm_domain.enums import AgentState, WorkState
from farm_domain.errors import ValidationError
from farm_domain.events import MAX_EVENTS, EventQuery, parse_time
from farm_domain.farm import Farm
from farm_domain.job_requests import JobChanges, JobSpec
from farm_domain.jobtypes import JobTypeSpec, RequirementSpec
from farm_domain.work import JobQuery, TaskStatus

_FRAMES = re.compile(r"^(-?\d+(?:\.\d+)?)(?:-(-?\d+(?:\.\d+)?))?(?:x(\d+(?:\.\d+)?))?$")
_REQUIRES = re.compile(r"^([^<>=]+?)\s*(?:(>=|<=|==)\s*(.+))?$")


def parse_frames(text: str) -> tuple[float, float, float]:
    """``1-100x2`` → (1, 100, 2); ``5`` → (5, 5, 1)."""
    match = _FRAMES.match(text.strip())
    if match is None:
        raise ValidationError(f"--frames {text!r}: use START, START-END or START-ENDxBY")
    start = float(match.group(1))
    end = float(match.group(2)) if match.group(2) else start
    by = float(match.group(3)) if match.group(3) else 1.0
    return start, end, by


def parse_requirement(text: str) -> RequirementSpec:
    """``blender>=2.79``, ``blender<=2.80``, ``blender==2.79`` or ``blender``."""
    match = _REQUIRES.match(text.strip())
    if match is None:
        raise ValidationError(f"--requires {text!r}: use NAME, NAME>=V, NAME<=V or NAME==V")
    name, operator, version = match.group(1).strip(), match.group(2), match.group(3)
    return RequirementSpec(
        name,
        version if operator in (">=", "==") else None,
        version if operator in ("<=", "==") else None,
    )


def _agent_id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise ValidationError(f"{text} is not an agent id (a UUID)") from None


def _default(cls: type, name: str) -> object:
    """The default of a field of the domain's ``cls``: flags repeat none."""
    default: object = attrs.fields_dict(cls)[name].default
    return default


def add_parsers(commands: Any) -> None:
    agents = commands.add_parser("agents", help="list, show, disable, enable, delete agents")
    agent_commands = agents.add_subparsers(dest="action", required=True)
    listing = agent_commands.add_parser("list", help="agents matching every filter")
    for flag in ("min-ram", "max-ram", "min-cpus", "max-cpus", "limit"):
        listing.add_argument(f"--{flag}", type=int)
    listing.add_argument("--offset", type=int, default=_default(AgentQuery, "offset"))
    listing.add_argument("--hostname")
    listing.add_argument("--state", choices=[s.label for s in AgentState])
    show = agent_commands.add_parser("show", help="one agent")
    show.add_argument("agent_id")
    for action in ("disable", "enable", "delete"):
        each = agent_commands.add_parser(action, help=f"{action} agents")
        each.add_argument("agent_ids", nargs="+")
    credentials.add_agent_parser(agent_commands)
    agent_why = agent_commands.add_parser("why", help="why an agent is idle, or what it would get")
    agent_why.add_argument("agent_id")

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
            default=_default(JobSpec, option),
            help="MB each task needs" if option == "ram" else None,
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
        help="software requirement: NAME, NAME>=V, NAME<=V, NAME==V",
    )
    submit.add_argument("--tag", action="append", default=[], help="a label for the job")
    job_list = job_commands.add_parser("list", help="jobs, newest first")
    job_list.add_argument("--state", choices=["queued", *(s.value for s in WorkState)])
    job_list.add_argument("--title")
    job_list.add_argument("--limit", type=int, default=100)
    job_list.add_argument("--offset", type=int, default=_default(JobQuery, "offset"))
    for action in ("show", "delete"):
        each = job_commands.add_parser(action, help=f"{action} a job")
        each.add_argument("job", help="job id (or title, for show)")
    job_why = job_commands.add_parser(
        "why", help="whether a job can run now and, per agent, why not"
    )
    job_why.add_argument("job", help="job id")
    unblock = job_commands.add_parser(
        "unblock", help="offer a job again to an agent it is blocked for (or to every agent)"
    )
    unblock.add_argument("job", help="job id")
    whom = unblock.add_mutually_exclusive_group(required=True)
    whom.add_argument("agent", nargs="?", help="agent id")
    whom.add_argument("--all", action="store_true", help="every agent blocked for the job")
    controls.add_parsers(job_commands)
    priority = job_commands.add_parser("priority", help="change a job's priority")
    priority.add_argument("job")
    priority.add_argument("priority", type=int)

    software = commands.add_parser("software", help="the software catalogue")
    software_commands = software.add_subparsers(dest="action", required=True)
    software_commands.add_parser("list", help="software and versions")
    add = software_commands.add_parser("add", help="add software with versions, oldest first")
    add.add_argument("name")
    add.add_argument("versions", nargs="*")
    remove = software_commands.add_parser("delete", help="delete software")
    remove.add_argument("name")

    events = commands.add_parser("events", help="the audit trail: who changed what, newest first")
    events.add_argument("--target", help="job:12, agent:<id>, software:<name>…")
    events.add_argument("--actor", help="an identity's name")
    events.add_argument("--since", help="an ISO-8601 time (UTC unless it names a zone)")
    events.add_argument(
        "--limit", type=int, default=_default(EventQuery, "limit"), help=f"1 to {MAX_EVENTS}"
    )

    for parser in (
        events,
        listing,
        show,
        submit,
        job_list,
        software_commands.choices["list"],
        job_commands.choices["show"],
        job_why,
        agent_why,
    ):
        parser.add_argument("--json", action="store_true", help="machine-readable output")


COMMANDS = ("agents", "jobs", "software", "events")


def run(farm: Farm, args: argparse.Namespace, operator: Identity | None = None) -> int:
    """Run the command as ``operator`` (default: the local operator, by login name)."""
    handler = {"agents": _agents, "jobs": _jobs, "software": _software, "events": _events}[
        args.command
    ]
    return handler(farm, args, operator or Identity.local_operator(getpass.getuser()))


def _events(farm: Farm, args: argparse.Namespace, me: Identity) -> int:
    query = EventQuery(
        target=args.target,
        actor=args.actor,
        since=None if args.since is None else parse_time(args.since),
        limit=args.limit,
    )
    events = farm.events.query(me, query)
    if args.json:
        output.emit_json(events)
    else:
        output.table(
            ["at", "actor", "role", "action", "target", "before", "after"],
            [
                (
                    e.at,
                    e.actor,
                    e.role.value,
                    e.action,
                    e.target,
                    _compact(e.before),
                    _compact(e.after),
                )
                for e in events
            ],
        )
    return 0


def _compact(fields: dict[str, Any] | None) -> str | None:
    if not fields:
        return None
    return " ".join(f"{name}={value}" for name, value in fields.items())


def _agents(farm: Farm, args: argparse.Namespace, me: Identity) -> int:
    registry = farm.agents
    if args.action == "list":
        agents = registry.query(
            me,
            AgentQuery(
                min_ram=args.min_ram,
                max_ram=args.max_ram,
                min_cpus=args.min_cpus,
                max_cpus=args.max_cpus,
                hostname=args.hostname,
                state=AgentState.parse(args.state, "state") if args.state else None,
                limit=args.limit,
                offset=args.offset,
            ),
        )
        if args.json:
            output.emit_json(agents)
        else:
            output.table(
                ["id", "hostname", "port", "remote ip"],
                [(a.id, a.hostname, a.port, a.remote_ip) for a in agents],
            )
        return 0
    if args.action == "show":
        agent = registry.get(me, _agent_id(args.agent_id))
        if args.json:
            output.emit_json({**output.plain(agent), "state": agent.shown_state.label})
            return 0
        output.fields(
            [
                ("id", agent.id),
                ("hostname", agent.hostname),
                ("state", agent.shown_state),
                ("address", f"{agent.remote_ip}:{agent.port} ({agent.use_address})"),
                ("ram", f"{agent.free_ram} MB free of {agent.ram} MB"),
                ("cpus", agent.cpus),
                ("os", agent.os_fullname),
                ("version", agent.version),
                ("last heard from", agent.last_heard_from),
                ("software", [f"{s.software} {s.version}" for s in agent.software]),
                ("gpus", agent.gpus),
                ("tasks", len(registry.tasks(me, agent.id))),
                ("dispatch", registry.call_refusal(agent) or "callable"),
            ]
        )
        return 0
    if args.action == "why":
        explain.print_agent(farm.explain.agent(me, _agent_id(args.agent_id)), args.json)
        return 0
    if args.action == "revoke-token":
        return credentials.revoke_agent_token(farm, _agent_id(args.agent_id))
    ids = [_agent_id(text) for text in args.agent_ids]
    for done, agent_id in enumerate(ids, 1):
        if args.action == "delete":
            registry.delete(me, agent_id)
        else:
            state = "disabled" if args.action == "disable" else "online"
            registry.update(me, agent_id, AgentChanges(state=state))
        if len(ids) > 1:
            output.progress(done, len(ids), f"{args.action} agents")
    print(f"{args.action}d {len(ids)} agent(s)")
    return 0


def _job_id(text: str) -> int:
    if not text.isdigit():
        raise ValidationError(f"{text} is not a job id")
    return int(text)


def _jobs(farm: Farm, args: argparse.Namespace, me: Identity) -> int:
    service = farm.jobs
    if args.action == "submit":
        start, end, by = parse_frames(args.frames)
        data: dict[str, Any] = {}
        if args.data_json:
            try:
                given = json.loads(args.data_json)
            except ValueError as error:
                raise ValidationError(f"--job-data is not JSON: {error}") from None
            if not isinstance(given, dict):
                raise ValidationError("--job-data must be a JSON object")
            data.update(given)
        if args.command_line:
            data["command"] = shlex.split(args.command_line)
        elif args.jobtype == "command":
            raise ValidationError("--command is required for the command job type")
        built_in = {
            "command": "runs a command per frame",
            "blender": "renders each frame of a .blend with Blender",
        }
        if args.jobtype in built_in and not any(
            j.name == args.jobtype for j in farm.jobtypes.latest_versions(me)
        ):
            farm.jobtypes.create(
                me, JobTypeSpec(name=args.jobtype, description=built_in[args.jobtype])
            )
        view = service.submit(
            me,
            JobSpec(
                title=args.title,
                jobtype=args.jobtype,
                start=start,
                end=end,
                by=by,
                batch=args.batch,
                priority=args.priority,
                weight=args.weight,
                requeue=args.requeue,
                ram=args.ram,
                cpus=args.cpus,
                data=data,
                tags=tuple(args.tag),
                software_requirements=tuple(parse_requirement(r) for r in args.requires),
            ),
        )
        if args.json:
            output.emit_json({"job": view.job, "tasks": view.counts})
        else:
            print(
                f"submitted job {view.job.id} ({view.job.title}) with "
                f"{sum(view.counts.values())} task(s)"
            )
        return 0
    if args.action == "list":
        query = JobQuery(
            state=None if args.state in (None, "queued") else WorkState(args.state),
            queued=args.state == "queued",
            title=args.title,
            limit=args.limit,
            offset=args.offset,
        )
        views = service.query(me, query)
        if args.json:
            output.emit_json([{"job": v.job, "tasks": v.counts} for v in views])
        else:
            output.table(
                ["id", "title", "state", "priority", "done", "running", "queued", "failed"],
                [
                    (
                        v.job.id,
                        v.job.title,
                        v.job.state or "queued",
                        v.job.priority,
                        v.counts.get(TaskStatus.DONE, 0),
                        v.counts.get(TaskStatus.RUNNING, 0) + v.counts.get(TaskStatus.ASSIGNED, 0),
                        v.counts.get(TaskStatus.QUEUED, 0),
                        v.counts.get(TaskStatus.FAILED, 0),
                    )
                    for v in views
                ],
            )
        return 0
    if args.action == "show":
        view = service.get(me, args.job)
        if args.json:
            output.emit_json(
                {
                    "job": view.job,
                    "tasks": view.counts,
                    "blocklist": [b.block for b in service.blocklist(me, view.job.id)],
                }
            )
            return 0
        job = view.job
        output.fields(
            [
                ("id", job.id),
                ("title", job.title),
                ("state", job.state or "queued"),
                ("job type", f"{job.jobtype} v{job.jobtype_version}"),
                ("frames", f"{job.frame_start:g}-{job.frame_end:g} by {job.frame_by:g}"),
                ("priority", job.priority),
                ("weight", job.weight),
                ("batch", job.batch),
                ("submitted", job.time_submitted),
                ("finished", job.time_finished),
                ("reason", job.reason),
                *[(f"tasks {status.value}", view.counts.get(status, 0)) for status in TaskStatus],
            ]
        )
        return 0
    if args.action in controls.ACTIONS:
        return controls.run(farm, args, me)
    job_id = _job_id(args.job)
    if args.action == "why":
        explain.print_job(farm.explain.job(me, job_id), args.json)
        return 0
    if args.action == "priority":
        service.update(me, job_id, JobChanges(priority=args.priority))
    elif args.action == "unblock":
        agent_id = None if args.all else _agent_id(args.agent)
        count = service.unblock(me, job_id, agent_id)
        print(f"job {job_id}: {count} agent(s) unblocked")
        return 0
    else:
        service.delete(me, job_id)
    print(f"job {job_id}: {args.action} done")
    return 0


def _software(farm: Farm, args: argparse.Namespace, me: Identity) -> int:
    catalogue = farm.software
    if args.action == "list":
        everything = catalogue.all_software(me)
        if args.json:
            output.emit_json(everything)
        else:
            output.table(
                ["software", "versions"],
                [(s.name, " ".join(v.version for v in s.versions)) for s in everything],
            )
        return 0
    if args.action == "add":
        created = catalogue.create(me, args.name, tuple(VersionSpec(v) for v in args.versions))
        print(f"added {created.name} with {len(created.versions)} version(s)")
        return 0
    catalogue.delete(me, args.name)
    print(f"deleted {args.name}")
    return 0
