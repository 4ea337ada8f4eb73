"""``python -m rollsafe.emulator run --state-dir D [--port P]`` (used by ``emulator start``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from rollsafe.emulator.server import run_emulator


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m rollsafe.emulator")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="serve in the foreground")
    run.add_argument("--state-dir", type=Path, required=True)
    run.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    run_emulator(args.state_dir, args.port)


if __name__ == "__main__":
    main()
