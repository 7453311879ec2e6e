"""``farm jobs retry|skip|stop <job> <task...>`` and ``farm jobs cancel|pause [--stop]|resume|
requeue <job...>``: the controls of ``farm_domain.controls``, one line per task or job. The
exit status is 1 when any was refused (each refusal on stderr, the others done)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from farm_domain.access import Identity
from farm_domain.controls import JobAction, Outcome, Running, TaskAction
from farm_domain.errors import ValidationError
from farm_domain.farm import Farm
from farm_domain.validation import parse_id

_TASK_HELP = {
    TaskAction.RETRY: "put done, failed or running tasks back in the queue",
    TaskAction.SKIP: "count tasks as done without running them",
    TaskAction.STOP: "stop running tasks, leaving them failed",
}
_JOB_HELP = {
    JobAction.CANCEL: "stop jobs' running tasks and end them canceled",
    JobAction.PAUSE: "pause jobs (running tasks finish, or stop with --stop)",
    JobAction.RESUME: "resume paused jobs",
    JobAction.REQUEUE: "put jobs' failed and canceled tasks back in the queue",
}
_DONE = {
    TaskAction.RETRY: "retried",
    TaskAction.SKIP: "skipped",
    TaskAction.STOP: "stopped",
}
ACTIONS = frozenset(a.value for a in TaskAction) | frozenset(a.value for a in JobAction)


def add_parsers(job_commands: Any) -> None:
    for task_action in TaskAction:
        each = job_commands.add_parser(task_action.value, help=_TASK_HELP[task_action])
        each.add_argument("job", help="job id")
        each.add_argument("tasks", nargs="+", help="task ids")
    for job_action in JobAction:
        each = job_commands.add_parser(job_action.value, help=_JOB_HELP[job_action])
        each.add_argument("jobs", nargs="+", help="job ids")
        if job_action is JobAction.PAUSE:
            each.add_argument(
                "--stop", action="store_true", help="stop running tasks and requeue them"
            )


def _ids(texts: list[str], what: str) -> list[int]:
    ids = []
    for text in texts:
        value = parse_id(text) if text.isdigit() else None
        if value is None:
            raise ValidationError(f"{text} is not a {what} id")
        ids.append(value)
    return ids


def run(farm: Farm, args: argparse.Namespace, me: Identity) -> int:
    """Apply ``args.action``; print one line per task or job."""
    refused = 0
    if args.action in {a.value for a in TaskAction}:
        action = TaskAction(args.action)
        (job_id,) = _ids([args.job], "job")
        outcomes = farm.controls.tasks(me, action, job_id, _ids(args.tasks, "task"))
        for outcome in outcomes:
            refused += _report(outcome, "task", _DONE[action])
    else:
        job_action = JobAction(args.action)
        running = Running.STOP if getattr(args, "stop", False) else Running.FINISH
        for outcome in farm.controls.jobs(me, job_action, _ids(args.jobs, "job"), running):
            if job_action is JobAction.REQUEUE:
                done = f"requeued {len(outcome.requeued)} failed task(s)"
            else:
                done = f"{job_action} done"
            refused += _report(outcome, "job", done)
    return 1 if refused else 0


def _report(outcome: Outcome, what: str, done: str) -> int:
    if outcome.error is not None:
        print(f"{what} {outcome.id}: refused: {outcome.error.message}", file=sys.stderr)
        return 1
    print(f"{what} {outcome.id}: {done}")
    return 0
