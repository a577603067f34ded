"""Command line: ``python -m dfl_toolkit doctor`` (also installed as ``dfl``)."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dfl", description="dfl_toolkit: deep feature learning and NAS.")
    sub = parser.add_subparsers(dest="command", required=True)
    doctor = sub.add_parser("doctor", help="check versions, device and offline datasets")
    doctor.add_argument("--no-data", action="store_true", help="skip loading the offline datasets")
    args = parser.parse_args(argv)
    if args.command == "doctor":
        from .doctor import environment_report, format_report

        rows = environment_report(load_datasets=not args.no_data)
        print(format_report(rows))
        return 1 if any("FAILED" in f or "MISSING" in f for _, f in rows) else 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
