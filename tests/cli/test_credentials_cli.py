"""The credential commands through the ``farm`` entry point, on SQLite and PostgreSQL; and the
admin token ``farm serve`` leaves on a farm without an admin."""

from __future__ import annotations

import io
import json
import os
import stat
import uuid
from pathlib import Path

import pytest

from farm_adapters.clock import SystemClock
from farm_adapters.composition import build_runtime
from farm_adapters.settings import Settings
from farm_adapters.sql.unit_of_work import SqlUnitOfWorkFactory
from farm_cli.credentials import read_password, write_admin_token
from farm_cli.main import main
from farm_domain.access import Role
from farm_domain.errors import Unauthenticated, ValidationError
from tests.support.cli import run


def with_stdin(monkeypatch, text: str) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(text))


def authenticate(secret: str):
    runtime = build_runtime(Settings.load(os.environ))
    try:
        return runtime.farm.identities.authenticate(secret)
    finally:
        runtime.close()


def test_a_created_token_is_printed_alone_and_authenticates(farm_env, capsys) -> None:
    code, out, err = run(capsys, "tokens", "create", "--role", "artist", "--name", "ci")
    assert code == 0 and err == ""
    secret = out.removesuffix("\n")
    assert out == secret + "\n" and secret.startswith("farm_") and len(secret) > 40
    identity = authenticate(secret)
    assert (identity.name, identity.role) == ("ci", Role.ARTIST)


def test_tokens_are_listed_without_secrets_and_revoked(farm_env, capsys) -> None:
    secret = run(capsys, "tokens", "create", "--role", "viewer", "--name", "v")[1].strip()
    run(capsys, "tokens", "create", "--role", "agent-join", "--name", "join", "--expires", "7")
    code, out, _ = run(capsys, "tokens", "list")
    assert code == 0 and secret not in out
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "ROLE", "STATE", "CREATED", "EXPIRES"]
    assert [line.split()[:3] for line in lines[1:]] == [
        ["join", "agent-join", "active"],
        ["v", "viewer", "active"],
    ]
    code, out, _ = run(capsys, "tokens", "revoke", "v")
    assert code == 0 and out == "revoked token v\n"
    code, out, _ = run(capsys, "tokens", "list", "--json")
    listed = {t["name"]: t for t in json.loads(out)}
    assert secret not in out
    assert listed["v"]["state"] == "revoked" and listed["v"]["revoked"]
    assert listed["join"]["expires"] and listed["join"]["role"] == "agent-join"
    with pytest.raises(Unauthenticated):
        authenticate(secret)


@pytest.mark.parametrize(
    ("argv", "status", "message"),
    [
        (["tokens", "revoke", "nope"], 1, "farm: no token named nope to revoke"),
        (["tokens", "create", "--role", "viewer", "--name", "a b"], 2, "not a valid token name"),
        (["tokens", "create", "--role", "viewer", "--name", "x", "--expires", "0"], 2, "expires"),
    ],
)
def test_refusals_are_one_line_and_a_status(farm_env, capsys, argv, status, message) -> None:
    code, out, err = run(capsys, *argv)
    assert (code, out) == (status, "")
    assert message in err and len(err.strip().splitlines()) == 1


def test_a_taken_token_name_is_a_conflict(farm_env, capsys) -> None:
    run(capsys, "tokens", "create", "--role", "viewer", "--name", "v")
    code, out, err = run(capsys, "tokens", "create", "--role", "admin", "--name", "v")
    assert (code, out, err) == (1, "", "farm: a token named v exists\n")


def test_the_agent_role_is_not_offered(farm_env, capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["tokens", "create", "--role", "agent", "--name", "a"])
    assert exited.value.code == 2


def test_storage_flags_go_anywhere_on_the_line(
    farm_env, capsys, monkeypatch, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    database = f"sqlite:///{elsewhere / 'farm.db'}"
    code, _, err = run(capsys, "tokens", "list", "--database", database)
    assert code == 2 and f"the database {elsewhere / 'farm.db'} does not exist" in err
    assert not (elsewhere / "farm.db").exists()  # refused, not created
    assert run(capsys, "db", "upgrade", "--database", database)[0] == 0
    run(capsys, "tokens", "--database", database, "create", "--role", "viewer", "--name", "a")
    run(capsys, "tokens", "create", "--role", "viewer", "--name", "b", "--database", database)
    with_stdin(monkeypatch, "long enough\n")
    argv = ["users", "add", "u", "--role", "viewer", "--password-stdin", "--database", database]
    assert run(capsys, *argv)[0] == 0
    assert json.loads(run(capsys, "tokens", "list", "--json")[1]) == []  # not this farm's
    monkeypatch.delenv("FARM_DATABASE_URL")  # the data directory's database, then
    code, out, _ = run(capsys, "tokens", "list", "--json", "--data-dir", str(elsewhere))
    assert code == 0 and [t["name"] for t in json.loads(out)] == ["a", "b"]
    code, out, _ = run(capsys, "users", "--data-dir", str(elsewhere), "list", "--json")
    assert code == 0 and [u["name"] for u in json.loads(out)] == ["u"]


def test_users_added_with_a_password_from_stdin_log_in(farm_env, capsys, monkeypatch) -> None:
    with_stdin(monkeypatch, "correct horse\n")
    code, out, _ = run(capsys, "users", "add", "alice", "--role", "artist", "--password-stdin")
    assert code == 0 and out == "added user alice (artist)\n"
    runtime = build_runtime(Settings.load(os.environ))
    try:
        _, session = runtime.farm.identities.login("alice", "correct horse")
        assert runtime.farm.identities.session_identity(session)[0].role is Role.ARTIST
    finally:
        runtime.close()
    with_stdin(monkeypatch, "battery staple\n")
    assert run(capsys, "users", "passwd", "alice", "--password-stdin")[0] == 0
    runtime = build_runtime(Settings.load(os.environ))
    try:
        with pytest.raises(Unauthenticated):
            runtime.farm.identities.session_identity(session)
        runtime.farm.identities.login("alice", "battery staple")
    finally:
        runtime.close()
    code, out, _ = run(capsys, "users", "list")
    assert code == 0 and out.splitlines()[1].split()[:2] == ["alice", "artist"]
    assert "battery" not in out and "argon2" not in out
    listed = json.loads(run(capsys, "users", "list", "--json")[1])
    assert [(u["name"], u["role"]) for u in listed] == [("alice", "artist")]
    assert "argon2" not in json.dumps(listed)
    assert run(capsys, "users", "remove", "alice") == (0, "removed user alice\n", "")
    assert run(capsys, "users", "remove", "alice")[:2] == (1, "")


@pytest.mark.parametrize(
    ("argv", "stdin", "message"),
    [
        (["users", "add", "bob", "--role", "viewer", "--password-stdin"], "short\n", "password"),
        (["users", "add", "bob", "--role", "viewer"], "", "use --password-stdin"),
        (["users", "passwd", "nobody", "--password-stdin"], "long enough\n", "no user named"),
    ],
)
def test_bad_user_commands_are_one_line(farm_env, capsys, monkeypatch, argv, stdin, message):
    with_stdin(monkeypatch, stdin)
    code, out, err = run(capsys, *argv)
    assert code in (1, 2) and out == ""
    assert message in err and len(err.strip().splitlines()) == 1


def test_the_agent_roles_are_not_for_people(farm_env, capsys) -> None:
    with pytest.raises(SystemExit):
        main(["users", "add", "bot", "--role", "agent-join", "--password-stdin"])


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_prompted_password_is_asked_twice() -> None:
    answers = iter(["correct horse", "correct horse", "one", "other"])
    asked: list[str] = []

    def prompt(text: str) -> str:
        asked.append(text)
        return next(answers)

    assert read_password(False, prompt, Terminal()) == "correct horse"
    assert asked == ["Password: ", "Repeat the password: "]
    with pytest.raises(ValidationError, match="differ"):
        read_password(False, prompt, Terminal())
    assert read_password(True, prompt, io.StringIO("pass word \r\nnext\n")) == "pass word "


def test_an_agents_credential_is_revoked_by_id(farm_env, capsys) -> None:
    agent_id = uuid.uuid4()
    runtime = build_runtime(Settings.load(os.environ))
    try:
        units = SqlUnitOfWorkFactory(runtime.engine)
        with units() as uow:  # as the registry does when the agent enrolls
            secret = runtime.farm.identities.issue_agent_credential(
                uow, agent_id, SystemClock().now()
            )
            uow.commit()
    finally:
        runtime.close()
    assert authenticate(secret).agent_id == agent_id
    code, out, _ = run(capsys, "agents", "revoke-token", str(agent_id))
    assert (code, out) == (0, f"revoked 1 credential(s) of agent {agent_id}\n")
    with pytest.raises(Unauthenticated):
        authenticate(secret)
    code, out, err = run(capsys, "agents", "revoke-token", str(agent_id))
    assert (code, out) == (1, "") and "has no credential" in err
    assert run(capsys, "agents", "revoke-token", "nope")[0] == 2


def test_the_admin_token_file_is_the_owners_only_and_replaced_whole(tmp_path: Path) -> None:
    path = write_admin_token(tmp_path / "data", "farm_first")
    assert path == tmp_path / "data" / "admin-token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == "farm_first\n"
    write_admin_token(tmp_path / "data", "farm_second")
    assert path.read_text() == "farm_second\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["admin-token"]
