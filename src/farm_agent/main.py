"""``farm agent`` (also ``python -m farm_agent``): run a render node."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from farm_agent import system
from farm_agent.agent import Agent, AgentConfig
from farm_agent.credentials import CredentialsError


class _JsonLines(logging.Formatter):
    _standard = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message"}

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update({k: v for k, v in record.__dict__.items() if k not in self._standard})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="farm agent", description="Run a farm render node.")
    parser.add_argument("--master", required=True, help="the master's URL, e.g. http://farm:8080")
    parser.add_argument(
        "--host", default="127.0.0.1", help="address the agent listens on (default 127.0.0.1)"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=50000,
        help="port the agent listens on (0: any free port; default 50000)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path("farm-agent-data"),
        help="keeps the agent id, the report outbox and logs",
    )
    parser.add_argument("--hostname", default=None, help="name to announce (default: detected)")
    parser.add_argument("--state", choices=["online", "disabled"], default="online")
    parser.add_argument("--cpus", type=int, default=None, help="CPUs to offer (default: all)")
    parser.add_argument("--ram", type=int, default=None, help="RAM in MB (default: detected)")
    parser.add_argument(
        "--heartbeat",
        type=float,
        default=30.0,
        help="seconds between heartbeats (with ±10%% jitter; default 30)",
    )
    parser.add_argument(
        "--on-shutdown",
        choices=["hand-back", "finish"],
        default="hand-back",
        help="on SIGTERM/SIGINT, hand running tasks back or finish them",
    )
    parser.add_argument(
        "--retry-delay",
        type=float,
        default=1.0,
        help="base of the back-off before retrying the master (seconds)",
    )
    parser.add_argument(
        "--log-every",
        type=float,
        default=5.0,
        help="seconds between the chunks of a running frame's log sent to the master (default 5)",
    )
    parser.add_argument("--farm-name", default=None)
    parser.add_argument(
        "--join-token",
        default=os.environ.get("FARM_AGENT_JOIN_TOKEN") or None,
        help="enrolls the agent with the master (also FARM_AGENT_JOIN_TOKEN); the credential "
        "the master answers with is kept in the data directory and used from then on",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonLines())
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if (
        not 0 <= args.port <= 65535
        or (args.cpus is not None and not 1 <= args.cpus <= 256)
        or (args.ram is not None and not 16 <= args.ram <= 262144)
        or args.heartbeat <= 0
        or args.log_every <= 0
    ):
        print(
            "farm agent: --port 0..65535, --cpus 1..256, --ram 16..262144, a positive "
            "--heartbeat and a positive --log-every are required",
            file=sys.stderr,
        )
        return 2
    config = AgentConfig(
        master=args.master,
        data_dir=args.data_dir,
        host=args.host,
        port=args.port,
        hostname=args.hostname or system.hostname(),
        cpus=args.cpus or system.cpus(),
        ram=args.ram or system.ram(),
        state=args.state,
        heartbeat=args.heartbeat,
        on_shutdown=args.on_shutdown,
        retry_base=args.retry_delay,
        retry_spread=args.retry_delay * 5,
        farm_name=args.farm_name,
        join_token=args.join_token,
        log_every=args.log_every,
    )
    try:
        agent = Agent(config)
    except CredentialsError as error:
        print(f"farm agent: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"farm agent: cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr)
        return 2
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: agent.request_shutdown())
    return agent.run()


if __name__ == "__main__":
    sys.exit(main())
