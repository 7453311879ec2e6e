"""``farm jobs retry|skip|stop <job> <task...>`` and ``farm jobs cancel|pause [--stop]|resume|
requeue <job...>``: the API's controls, one line per task or job. The exit status is 1 when any
was refused (each refusal on stderr, the others done)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from farm_cli.arguments import find_job, is_id, task_ids
from farm_client import FarmClient, FarmError, Outcome

_TASK_HELP = {
    "retry": "put done, failed or running tasks back in the queue",
    "skip": "count tasks as done without running them",
    "stop": "stop running tasks, leaving them failed",
}
_JOB_HELP = {
    "cancel": "stop jobs' running tasks and end them canceled",
    "pause": "pause jobs (running tasks finish, or stop with --stop)",
    "resume": "resume paused jobs",
    "requeue": "put jobs' failed and canceled tasks back in the queue",
}
_DONE = {"retry": "retried", "skip": "skipped", "stop": "stopped"}
ACTIONS = frozenset(_TASK_HELP) | frozenset(_JOB_HELP)


def add_parsers(job_commands: Any) -> None:
    for task_action, help_text in _TASK_HELP.items():
        each = job_commands.add_parser(task_action, help=help_text)
        each.add_argument("job", help="job id or title")
        each.add_argument("tasks", nargs="+", help="task ids")
    for job_action, help_text in _JOB_HELP.items():
        each = job_commands.add_parser(job_action, help=help_text)
        each.add_argument("jobs", nargs="+", help="job ids or titles")
        if job_action == "pause":
            each.add_argument(
                "--stop", action="store_true", help="stop running tasks and requeue them"
            )


def run(client: FarmClient, args: argparse.Namespace) -> int:
    """Apply ``args.action``; print one line per task or job."""
    if args.action in _TASK_HELP:
        tasks = task_ids(args.tasks)
        job = find_job(client, args.job)
        on_tasks = {
            "retry": client.retry_tasks,
            "skip": client.skip_tasks,
            "stop": client.stop_tasks,
        }
        outcomes = on_tasks[args.action](job, tasks)
        return 1 if sum(_report(o, "task", _DONE[args.action]) for o in outcomes) else 0
    refused = 0
    ids: list[int] = []
    for text in args.jobs:
        if is_id(text):
            ids.append(int(text))  # an unknown id is refused in the answer, in its place
            continue
        try:
            ids.append(find_job(client, text).id)
        except FarmError as error:
            print(f"job {text}: refused: {error.message}", file=sys.stderr)
            refused += 1
    if ids:
        if args.action == "pause":
            outcomes = client.pause_jobs(ids, stop_running=args.stop)
        else:
            bulk = {
                "cancel": client.cancel_jobs,
                "resume": client.resume_jobs,
                "requeue": client.requeue_jobs,
            }
            outcomes = bulk[args.action](ids)
        for outcome in outcomes:
            if args.action == "requeue" and outcome.job is not None:
                done = f"requeued {len(outcome.job.requeued)} failed task(s)"
            else:
                done = f"{args.action} done"
            refused += _report(outcome, "job", done)
    return 1 if refused else 0


def _report(outcome: Outcome, what: str, done: str) -> int:
    if not outcome.ok:
        print(f"{what} {outcome.id}: refused: {outcome.error}", file=sys.stderr)
        return 1
    print(f"{what} {outcome.id}: {done}")
    return 0
