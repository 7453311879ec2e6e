"""The operator CLI through its entry point: the same scenarios in local mode (SQLite,
PostgreSQL) and in remote mode against a running master (``cli_farm``)."""

from __future__ import annotations

import json
import uuid

import pytest

from farm_domain.agents import AgentChanges
from farm_domain.work import Task
from tests.support.cli import run
from tests.support.identities import ADMIN


def announce(hostname: str, ram: int = 4096) -> uuid.UUID:
    import os

    from farm_adapters.composition import build_runtime
    from farm_adapters.settings import Settings

    runtime = build_runtime(Settings.load(os.environ))
    agent_id = uuid.uuid4()
    runtime.farm.agents.announce(
        ADMIN,
        AgentChanges(
            id=str(agent_id),
            hostname=hostname,
            ram=ram,
            free_ram=ram,
            cpus=8,
            port=1025,
            use_address="passive",
        ),
        "127.0.0.1",
    )
    runtime.close()
    return agent_id


def test_agents_list_show_disable_enable_delete(cli_farm, capsys) -> None:
    big, small = announce("big", 65536), announce("small", 1024)
    code, out, _ = run(capsys, "agents", "list", "--min-ram", "8192")
    assert code == 0 and "big" in out and "small" not in out
    assert out.splitlines()[0].split() == ["ID", "HOSTNAME", "STATE", "PORT", "REMOTE", "IP"]
    assert out.splitlines()[1].split()[1:3] == ["big", "online"]
    code, out, _ = run(capsys, "agents", "list", "--json")
    listed = {a["id"]: a for a in json.loads(out)}
    assert {listed[str(big)]["hostname"], listed[str(small)]["hostname"]} == {"big", "small"}
    assert set(listed[str(big)]) == {"id", "hostname", "port", "remote_ip"}  # the API's shape
    code, out, _ = run(capsys, "agents", "disable", str(big), str(small))
    assert code == 0 and "disabled 2 agent(s)" in out
    code, out, _ = run(capsys, "agents", "show", str(big), "--json")
    assert json.loads(out)["state"] == "disabled"
    code, out, _ = run(capsys, "agents", "list", "--hostname", "small")
    assert [line.split()[2] for line in out.splitlines()[1:]] == ["disabled"]
    code, out, _ = run(capsys, "agents", "list", "--state", "disabled", "--hostname", "big")
    assert code == 0 and [line.split()[2] for line in out.splitlines()[1:]] == ["disabled"]
    run(capsys, "agents", "enable", str(big))
    code, out, _ = run(capsys, "agents", "show", str(big))
    assert code == 0 and "online" in out and "passive agents are never called" in out
    assert run(capsys, "agents", "delete", str(small))[0] == 0
    code, out, err = run(capsys, "agents", "show", str(small))
    assert code == 1 and out == "" and err.strip() == f"farm: Agent {small} not found"
    code, _, err = run(capsys, "agents", "show", "nope")
    assert code == 2 and "not an agent id" in err
    code, out, err = run(capsys, "agents", "delete", str(small))
    assert (code, out, err.strip()) == (1, "", f"farm: Agent {small} not found")


def test_jobs_from_submission_to_deletion(cli_farm, capsys) -> None:
    assert run(capsys, "software", "add", "blender", "2.79", "2.80")[0] == 0
    code, out, err = run(
        capsys,
        "jobs",
        "submit",
        "--title",
        "shot",
        "--frames",
        "1-10x2",
        "--batch",
        "2",
        "--priority",
        "5",
        "--command",
        "blender -b scene.blend -f {frame}",
        "--requires",
        "blender>=2.79",
        "--ram",
        "2048",
        "--json",
    )
    assert code == 0, err
    submitted = json.loads(out)  # the API's answer
    job_id = submitted["id"]
    assert (submitted["state"], submitted["tasks"]["queued"]) == ("queued", 5)
    assert submitted["data"] == {"command": ["blender", "-b", "scene.blend", "-f", "{frame}"]}
    assert submitted["software_requirements"][0]["min_version"] == "2.79"
    code, out, _ = run(capsys, "jobs", "list")
    assert code == 0 and "shot" in out and out.splitlines()[1].split()[4:] == ["0", "0", "5", "0"]
    code, out, _ = run(capsys, "jobs", "show", "shot")
    assert "tasks queued" in out and "1-10 by 2" in out
    assert run(capsys, "jobs", "pause", str(job_id))[0] == 0
    assert json.loads(run(capsys, "jobs", "show", str(job_id), "--json")[1])["state"] == "paused"
    assert run(capsys, "jobs", "resume", "shot")[0] == 0  # a title, wherever a job is named
    assert run(capsys, "jobs", "priority", "shot", "50")[0] == 0
    shown = json.loads(run(capsys, "jobs", "show", str(job_id), "--json")[1])
    assert (shown["state"], shown["priority"]) == ("queued", 50)
    code, out, _ = run(capsys, "jobs", "requeue", "shot")
    assert code == 0 and out.strip() == f"job {job_id}: requeued 0 failed task(s)"
    code, out, _ = run(capsys, "jobs", "why", "shot")
    assert code == 0 and out.startswith(f"job {job_id} (shot), queued:")
    code, out, _ = run(capsys, "jobs", "delete", "shot")
    assert (code, out.strip()) == (0, f"job {job_id}: delete done")
    code, _, err = run(capsys, "jobs", "show", str(job_id))
    assert code == 1 and f"Job {job_id} not found" in err
    code, out, err = run(capsys, "jobs", "delete", str(job_id))
    assert (code, out, err.strip()) == (1, "", f"farm: Job {job_id} not found")


def test_a_blender_job_from_the_cli(cli_farm, capsys) -> None:
    data = {"file": "/farm/shot.blend", "output": "/farm/out/shot_####", "samples": 16}
    submit = ["jobs", "submit", "--jobtype", "blender", "--frames", "1-4", "--json"]
    code, out, err = run(capsys, *submit, "--title", "shot", "--job-data", json.dumps(data))
    assert code == 0, err
    submitted = json.loads(out)
    assert submitted["data"] == data and submitted["jobtype"] == "blender"
    assert submitted["tasks"]["queued"] == 4
    for given, message in [
        ("{", "--job-data is not JSON"),
        ("[]", "--job-data must be a JSON object"),
        ('{"file": "/f"}', "`data.output` must be a path"),
    ]:
        code, _, err = run(capsys, *submit, "--title", "bad", "--job-data", given)
        assert code != 0 and message in err, err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["jobs", "submit", "--title", "t", "--frames", "ten"], "--frames 'ten'"),
        (
            ["jobs", "submit", "--title", "t", "--frames", "5-1", "--command", "true"],
            "`end` must be larger than or equal to start",
        ),
        (["jobs", "submit", "--title", "t", "--frames", "1"], "--command is required"),
        (
            [
                "jobs",
                "submit",
                "--title",
                "t",
                "--frames",
                "1",
                "--command",
                "x",
                "--requires",
                "maya>=2018",
            ],
            "Software maya not found",
        ),
    ],
)
def test_bad_submissions_are_one_clear_line(cli_farm, capsys, argv, message) -> None:
    code, out, err = run(capsys, *argv)
    assert code in (1, 2) and out == ""
    assert message in err and len(err.strip().splitlines()) == 1


def test_requeue_puts_failed_tasks_back(cli_farm, capsys) -> None:
    import os

    from farm_adapters.composition import build_runtime
    from farm_adapters.settings import Settings
    from farm_domain.job_requests import TaskReport
    from tests.support.fakes.collaborators import RecordingQueue

    job_id = json.loads(
        run(
            capsys,
            "jobs",
            "submit",
            "--title",
            "t",
            "--frames",
            "1-2",
            "--command",
            "true",
            "--requeue",
            "0",
            "--json",
        )[1]
    )["id"]
    agent_id = announce("node")
    # A recording queue: the assignment is not sent (a passive agent's would be released).
    runtime = build_runtime(Settings.load(os.environ), queue=RecordingQueue())
    for task in runtime.farm.jobs.tasks(ADMIN, job_id):
        runtime.farm.agents.assign_task(ADMIN, agent_id, task.id)
        runtime.farm.jobs.report(ADMIN, job_id, task.id, TaskReport(state="failed"))
    runtime.close()
    assert json.loads(run(capsys, "jobs", "show", str(job_id), "--json")[1])["state"] == "failed"
    code, out, _ = run(capsys, "jobs", "requeue", str(job_id))
    assert code == 0 and "requeued 2 failed task(s)" in out
    shown = json.loads(run(capsys, "jobs", "show", str(job_id), "--json")[1])
    assert shown["state"] == "queued" and shown["tasks"]["queued"] == 2


def test_events_show_what_the_local_operator_changed(cli_farm, capsys) -> None:
    agent_id = announce("render-01")
    assert run(capsys, "agents", "disable", str(agent_id))[0] == 0
    assert run(capsys, "software", "add", "maya", "2017")[0] == 0
    code, out, _ = run(capsys, "events", "--json", "--target", f"agent:{agent_id}")
    assert code == 0
    events = json.loads(out)
    assert [e["action"] for e in events] == ["agent.disable", "agent.enroll"]
    me = cli_farm.actor
    assert (events[0]["actor"], events[0]["role"], events[0]["address"]) == (
        me,
        "admin",
        cli_farm.address,
    )
    assert events[1]["actor"] == ADMIN.name
    code, out, _ = run(capsys, "events", "--actor", me, "--limit", "1")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["AT", "ACTOR", "ROLE", "ACTION", "TARGET", "BEFORE", "AFTER"]
    assert len(lines) == 2 and "software.create" in lines[1] and "software:maya" in lines[1]
    code, out, _ = run(capsys, "events", "--since", "2999-01-01")
    assert code == 0 and "(none)" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--limit", "0"], "`limit` must be between 1 and 1000"),
        (["--since", "soon"], "'soon' is not an ISO-8601 time"),
    ],
)
def test_bad_event_queries_are_one_clear_line(cli_farm, capsys, argv, message) -> None:
    code, out, err = run(capsys, "events", *argv)
    assert code == 2 and out == "" and message in err


def test_unblock_lifts_one_agents_block_or_every_agents(cli_farm, capsys) -> None:
    import os
    from datetime import UTC, datetime

    from farm_adapters.composition import build_runtime
    from farm_adapters.settings import Settings
    from farm_adapters.sql.unit_of_work import SqlUnitOfWorkFactory

    job_id = json.loads(
        run(
            capsys, "jobs", "submit", "--title", "t", "--frames", "1", "--command", "true", "--json"
        )[1]
    )["id"]
    first, second = announce("a"), announce("b")
    runtime = build_runtime(Settings.load(os.environ))
    with SqlUnitOfWorkFactory(runtime.engine)() as uow:  # three failures each, as reports record
        for agent_id in (first, second):
            for _ in range(3):
                uow.blocks.record_failure(job_id, agent_id, datetime.now(UTC))
        uow.commit()
    runtime.close()

    def blocked() -> set[str]:
        listed = json.loads(run(capsys, "jobs", "blocklist", str(job_id), "--json")[1])
        return {b["agent_id"] for b in listed}

    assert blocked() == {str(first), str(second)}
    code, out, _ = run(capsys, "jobs", "unblock", str(job_id), str(first))
    assert code == 0 and "1 agent(s) unblocked" in out
    assert blocked() == {str(second)}
    code, out, _ = run(capsys, "jobs", "unblock", str(job_id), "--all")
    assert code == 0 and "1 agent(s) unblocked" in out
    assert blocked() == set()
    with pytest.raises(SystemExit):  # argparse's usage error
        run(capsys, "jobs", "unblock", str(job_id))
    assert "one of the arguments agent --all is required" in capsys.readouterr().err
    code, _, err = run(capsys, "jobs", "unblock", str(job_id), "nope")
    assert code == 2 and "not an agent id" in err


def _submit(capsys: pytest.CaptureFixture[str], frames: str = "1-3") -> int:
    argv = ("jobs", "submit", "--title", "c", "--frames", frames, "--command", "true", "--json")
    return int(json.loads(run(capsys, *argv)[1])["id"])


def _tasks_of(job_id: int) -> list[Task]:
    import os

    from farm_adapters.composition import build_runtime
    from farm_adapters.settings import Settings

    runtime = build_runtime(Settings.load(os.environ))
    try:
        return runtime.farm.jobs.tasks(ADMIN, job_id)
    finally:
        runtime.close()


def test_task_controls(cli_farm, capsys) -> None:
    job_id = _submit(capsys)
    first, second, third = (t.id for t in _tasks_of(job_id))
    code, out, err = run(capsys, "jobs", "skip", str(job_id), str(first), str(second))
    assert code == 0, err
    assert out.splitlines() == [f"task {first}: skipped", f"task {second}: skipped"]
    code, out, err = run(capsys, "jobs", "retry", str(job_id), str(first), str(third))
    assert code == 1
    assert out.splitlines() == [f"task {first}: retried"]
    assert (
        err.strip()
        == f"task {third}: refused: Task {third} is queued already: there is nothing to retry"
    )
    code, _, err = run(capsys, "jobs", "stop", str(job_id), str(second))
    assert code == 1 and "only a running or assigned task can be stopped" in err
    states = {t.id: (t.status.value, t.skipped) for t in _tasks_of(job_id)}
    assert states == {first: ("queued", False), second: ("done", True), third: ("queued", False)}
    code, _, err = run(capsys, "jobs", "skip", str(job_id), "x")
    assert code == 2 and "x is not a task id" in err


def test_job_controls(cli_farm, capsys) -> None:
    first = _submit(capsys)
    second = _submit(capsys)
    code, out, err = run(capsys, "jobs", "pause", "--stop", str(first), str(second))
    assert code == 0, err
    assert out.splitlines() == [f"job {first}: pause done", f"job {second}: pause done"]
    code, _, err = run(capsys, "jobs", "pause", str(first))
    assert code == 1 and f"Job {first} is paused already" in err
    assert run(capsys, "jobs", "resume", str(first))[0] == 0
    code, out, err = run(capsys, "jobs", "cancel", str(first), str(second), "999999")
    assert code == 1
    assert out.splitlines() == [f"job {first}: cancel done", f"job {second}: cancel done"]
    assert "job 999999: refused: Job 999999 not found" in err
    shown = json.loads(run(capsys, "jobs", "show", str(first), "--json")[1])
    assert shown["state"] == "canceled" and shown["tasks"]["canceled"] == 3
    code, out, _ = run(capsys, "jobs", "list", "--state", "canceled")
    assert code == 0 and len(out.splitlines()) == 3
    code, out, _ = run(capsys, "jobs", "requeue", str(first))
    assert code == 0 and out.strip() == f"job {first}: requeued 3 failed task(s)"
    shown = json.loads(run(capsys, "jobs", "show", str(first), "--json")[1])
    assert shown["state"] == "queued" and shown["tasks"]["queued"] == 3


def test_software_versions_agents_software_and_a_required_range(cli_farm, capsys) -> None:
    """A requirement like the README's `--requires "blender>=2.79"`, end to end: a version
    added to existing software, the software given to an agent, a range required, the job
    explained."""
    assert run(capsys, "software", "add", "houdini", "19.5")[0] == 0
    code, out, err = run(capsys, "software", "add-version", "houdini", "20.0")
    assert code == 0 and out.startswith("added houdini 20.0 (rank "), err
    assert run(capsys, "software", "add-version", "houdini", "20.5")[0] == 0
    code, out, _ = run(capsys, "software", "list")
    assert [line.split() for line in out.splitlines() if line.startswith("houdini")] == [
        ["houdini", "19.5", "20.0", "20.5"]
    ]
    agent = announce_callable("render-range")
    code, out, err = run(
        capsys,
        *("jobs", "submit", "--title", "ranged", "--frames", "1", "--command", "true"),
        *("--requires", "houdini>=19.5,<=20.0", "--ram", "8", "--json"),
    )
    assert code == 0, err
    (required,) = json.loads(out)["software_requirements"]
    assert (required["software"], required["min_version"], required["max_version"]) == (
        "houdini",
        "19.5",
        "20.0",
    )
    code, out, _ = run(capsys, "jobs", "show", "ranged")
    assert "houdini>=19.5,<=20.0" in out
    assert _why_not(capsys, "ranged", agent) == "software"

    code, out, err = run(capsys, "agents", "add-software", str(agent), "houdini", "20.0")
    assert (code, out.strip()) == (0, f"agent {agent}: has houdini 20.0"), err
    code, out, _ = run(capsys, "agents", "show", str(agent))
    assert "houdini 20.0" in out
    assert _why_not(capsys, "ranged", agent) == "eligible"

    code, out, err = run(capsys, "agents", "remove-software", str(agent), "houdini", "20.0")
    assert (code, out.strip()) == (0, f"agent {agent}: no longer has houdini 20.0"), err
    assert _why_not(capsys, "ranged", agent) == "software"
    # Nothing answers it: gone before a later scenario's job is offered to it.
    assert run(capsys, "agents", "delete", str(agent))[0] == 0
    assert run(capsys, "software", "delete-version", "houdini", "20.5")[1] == (
        "deleted houdini 20.5\n"
    )
    code, out, err = run(capsys, "software", "delete-version", "houdini", "9.9")
    assert (code, out) == (1, "") and "not found" in err


def announce_callable(hostname: str) -> uuid.UUID:
    """An agent the master would call (at 127.0.0.1:1025, where nothing answers), announced
    through a recording queue so that nothing is sent to it now. It has 16 MB of RAM, less than
    any other job here asks: no other scenario's job is ever offered to it."""
    import os

    from farm_adapters.composition import build_runtime
    from farm_adapters.settings import Settings
    from tests.support.fakes.collaborators import RecordingQueue

    runtime = build_runtime(Settings.load(os.environ), queue=RecordingQueue())
    agent_id = uuid.uuid4()
    changes = AgentChanges(
        id=str(agent_id), hostname=hostname, ram=16, free_ram=16, cpus=8, port=1025
    )
    runtime.farm.agents.announce(ADMIN, changes, "127.0.0.1")
    runtime.close()
    return agent_id


def _why_not(capsys: pytest.CaptureFixture[str], job: str, agent: uuid.UUID) -> str:
    """Why the agent cannot take the job (``eligible`` when it can)."""
    explained = json.loads(run(capsys, "jobs", "why", job, "--json")[1])
    if str(agent) in {a["id"] for a in explained["eligible"]}:
        return "eligible"
    (reason,) = [g["reason"] for g in explained["agents"] if str(agent) in str(g["agents"])]
    return str(reason)


@pytest.mark.parametrize(
    ("requires", "message"),
    [
        ("blender>=", "--requires 'blender>=': use NAME"),
        ("blender>=2.79,>=2.80", "two minimum versions"),
        ("blender~=2.79", "--requires 'blender~=2.79'"),
    ],
    ids=["no-version", "two-minimums", "unknown-operator"],
)
def test_bad_requirements_are_refused_before_asking(cli_farm, capsys, requires, message) -> None:
    argv = ("jobs", "submit", "--title", "t", "--frames", "1", "--command", "true")
    code, out, err = run(capsys, *argv, "--requires", requires)
    assert (code, out) == (2, "") and message in err


def test_deleting_what_is_not_there_fails(cli_farm, capsys) -> None:
    code, out, err = run(capsys, "jobs", "delete", "999999")
    assert (code, out, err) == (1, "", "farm: Job 999999 not found\n")
    code, out, err = run(capsys, "jobs", "delete", "no such title")
    assert (code, out) == (1, "") and "not found" in err
    code, out, err = run(capsys, "software", "delete", "nope")
    assert (code, out) == (1, "") and err.startswith("farm: ") and "nope" in err
    for action in ("priority", "why", "unblock", "pause", "retry"):
        extra = {"priority": ["5"], "unblock": ["--all"], "retry": ["1"]}.get(action, [])
        code, out, err = run(capsys, "jobs", action, "no such title", *extra)
        assert (code, out) == (1, "") and "not found" in err, (action, err)


def test_an_unbalanced_quote_is_one_clear_line(cli_farm, capsys) -> None:
    argv = ("jobs", "submit", "--title", "t", "--frames", "1", "--command", "echo 'frame")
    code, out, err = run(capsys, *argv)
    assert (code, out) == (2, "")
    assert err == 'farm: --command "echo \'frame": No closing quotation\n'


def test_global_flags_go_before_or_after_the_action(cli_farm, capsys) -> None:
    job_id = _submit(capsys, "1")
    for argv in (
        ("--json", "jobs", "show", str(job_id)),
        ("jobs", "--json", "show", str(job_id)),
        ("jobs", "show", "--json", str(job_id)),
        ("jobs", "show", str(job_id), "--json"),
    ):
        code, out, err = run(capsys, *argv)
        assert code == 0 and json.loads(out)["id"] == job_id, (argv, err)


def test_the_json_is_the_apis(cli_farm, capsys) -> None:
    job_id = _submit(capsys, "1")
    shown = json.loads(run(capsys, "jobs", "show", str(job_id), "--json")[1])
    (listed,) = json.loads(run(capsys, "jobs", "list", "--title", "c", "--limit", "1", "--json")[1])
    assert shown["state"] == "queued" and listed["id"] == job_id
    assert set(shown) >= {"id", "title", "state", "tasks", "start", "end", "by", "time_submitted"}
    assert shown["tasks"] == {**dict.fromkeys(shown["tasks"], 0), "queued": 1}


def test_lists_take_the_dashboards_filters(cli_farm, capsys) -> None:
    # The remote farm is shared by the module's scenarios: this one's names are its own.
    word = f"w{uuid.uuid4().hex[:8]}"
    for title, tag in (
        (f"{word} shot b", "gpu"),
        (f"{word} shot a", "cpu"),
        (f"{word} comp", "gpu"),
    ):
        argv = ("jobs", "submit", "--title", title, "--frames", "1", "--command", "true")
        assert run(capsys, *argv, "--tag", tag)[0] == 0

    def titles(*flags: str) -> list[str]:
        code, out, err = run(capsys, "jobs", "list", "--search", word, *flags, "--json")
        assert code == 0, err
        return [job["title"].removeprefix(f"{word} ") for job in json.loads(out)]

    assert titles("--search", f"{word.upper()} SHOT", "--sort", "title", "--order", "asc") == [
        "shot a",
        "shot b",
    ]
    assert titles("--tag", "gpu", "--type", "command") == ["comp", "shot b"]
    assert titles("--user", "nobody") == []
    assert titles("--state", "queued", "--search", f"{word} comp") == ["comp"]
    code, _, err = run(capsys, "jobs", "list", "--search", "x" * 129)
    assert code != 0 and "`q`" in err
    announce(f"{word}-render-b"), announce(f"{word}-render-a"), announce(f"{word}-comp-c")
    code, out, _ = run(capsys, "agents", "list", "--search", f"{word}-render", "--order", "desc")
    assert [line.split()[1] for line in out.splitlines()[1:]] == [
        f"{word}-render-b",
        f"{word}-render-a",
    ]
