"""The credential commands: tokens and users, an agent's credential, and the first admin token
``farm serve`` writes. They act as the local operator, through the IdentityService."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from farm_cli import output
from farm_domain.access import PEOPLE, Identity, Role
from farm_domain.credentials import Token
from farm_domain.errors import ValidationError
from farm_domain.farm import Farm
from farm_domain.identities import MAX_PASSWORD

COMMANDS = ("tokens", "users")
ADMIN_TOKEN_FILE = "admin-token"

Prompt = Callable[[str], str]


def operator() -> Identity:
    return Identity.local_operator(getpass.getuser())


def add_parsers(commands: Any) -> None:
    """The ``tokens`` and ``users`` commands (local mode only: they have no API)."""
    tokens = commands.add_parser("tokens", help="create, list and revoke bearer tokens")
    token_commands = tokens.add_subparsers(dest="action", required=True)
    create = token_commands.add_parser(
        "create", help="create a token and print it (it is shown only this once)"
    )
    create.add_argument(
        "--role",
        required=True,
        choices=[r.value for r in Role if r is not Role.AGENT],
        help="agent-join: may enroll new agents, nothing else",
    )
    create.add_argument("--name", required=True)
    create.add_argument("--expires", type=int, metavar="DAYS", help="default: never")
    token_commands.add_parser("list", help="tokens (never their secrets)")
    revoke = token_commands.add_parser("revoke", help="revoke a token")
    revoke.add_argument("name")

    users = commands.add_parser("users", help="people who log in to the dashboard")
    user_commands = users.add_subparsers(dest="action", required=True)
    add = user_commands.add_parser("add", help="add a user")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=[r.value for r in PEOPLE])
    passwd = user_commands.add_parser("passwd", help="set a user's password")
    passwd.add_argument("name")
    for parser in (add, passwd):
        parser.add_argument(
            "--password-stdin",
            action="store_true",
            help="read the password from the first line of standard input (default: ask twice)",
        )
    remove = user_commands.add_parser("remove", help="remove a user and end their sessions")
    remove.add_argument("name")
    user_commands.add_parser("list", help="users")


def add_agent_parser(agent_commands: Any) -> None:
    """``farm agents revoke-token AGENT_ID``."""
    revoke = agent_commands.add_parser(
        "revoke-token", help="revoke an agent's credential: it is shut out until it enrolls again"
    )
    revoke.add_argument("agent_id")


def run(
    farm: Farm,
    args: argparse.Namespace,
    *,
    prompt: Prompt = getpass.getpass,
    stdin: TextIO | None = None,
) -> int:
    if args.command == "tokens":
        return _tokens(farm, args)
    return _users(farm, args, prompt, sys.stdin if stdin is None else stdin)


def revoke_agent_token(farm: Farm, agent_id: uuid.UUID) -> int:
    revoked = farm.identities.revoke_agent_credentials(operator(), agent_id)
    print(f"revoked {revoked} credential(s) of agent {agent_id}")
    return 0


def token_state(token: Token, now: datetime) -> str:
    if token.revoked is not None:
        return "revoked"
    return "active" if token.usable(now) else "expired"


def _tokens(farm: Farm, args: argparse.Namespace) -> int:
    service = farm.identities
    if args.action == "create":
        _, secret = service.create_token(operator(), Role.parse(args.role), args.name, args.expires)
        print(secret)
        return 0
    if args.action == "list":
        now = datetime.now(UTC)
        tokens = service.tokens(operator())
        if getattr(args, "json", False):
            output.emit_json([{**output.plain(t), "state": token_state(t, now)} for t in tokens])
        else:
            output.table(
                ["name", "role", "state", "created", "expires"],
                [(t.name, t.role, token_state(t, now), t.created, t.expires) for t in tokens],
            )
        return 0
    service.revoke_token(operator(), args.name)
    print(f"revoked token {args.name}")
    return 0


def _users(farm: Farm, args: argparse.Namespace, prompt: Prompt, stdin: TextIO) -> int:
    service = farm.identities
    if args.action == "add":
        password = read_password(args.password_stdin, prompt, stdin)
        user = service.add_user(operator(), args.name, Role.parse(args.role), password)
        print(f"added user {user.name} ({user.role})")
        return 0
    if args.action == "passwd":
        password = read_password(args.password_stdin, prompt, stdin)
        service.set_password(operator(), args.name, password)
        print(f"set the password of {args.name}")
        return 0
    if args.action == "remove":
        service.remove_user(operator(), args.name)
        print(f"removed user {args.name}")
        return 0
    users = service.users(operator())
    if getattr(args, "json", False):
        output.emit_json(users)
    else:
        output.table(["name", "role", "created"], [(u.name, u.role, u.created) for u in users])
    return 0


def read_password(from_stdin: bool, prompt: Prompt, stdin: TextIO) -> str:
    """The first line of ``stdin``, or a password typed twice. Raises ValidationError."""
    if from_stdin:
        line = stdin.readline(MAX_PASSWORD + 2)
        return line.removesuffix("\n").removesuffix("\r")
    if not stdin.isatty():
        raise ValidationError("no terminal to ask for the password on: use --password-stdin")
    password = prompt("Password: ")
    if prompt("Repeat the password: ") != password:
        raise ValidationError("the passwords differ")
    return password


def write_admin_token(data_dir: Path, secret: str) -> Path:
    """Write the first admin token to ``<data dir>/admin-token``, readable by its owner only.
    The file is created anew (never through a file or link already there) and renamed into
    place, so a token left by a farm that has since been wiped is replaced whole."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / ADMIN_TOKEN_FILE
    partial = data_dir / f".{ADMIN_TOKEN_FILE}.{os.getpid()}"
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w") as file:
            file.write(secret + "\n")
            file.flush()
            os.fsync(file.fileno())
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return path
