"""``python -m benchmarks [name ...]``: run the named benchmarks (default: all); print where results went."""

from __future__ import annotations

import argparse
import importlib
import json
import sys

from benchmarks import BENCHMARKS, log


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default: all of {', '.join(BENCHMARKS)})")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(BENCHMARKS))
        return 0
    names = []
    for raw in args.names or BENCHMARKS:
        # `make bench B=b5` works as well as the full name.
        matches = [b for b in BENCHMARKS if b == raw or b.split("_", 1)[0] == raw]
        if not matches:
            parser.error(f"unknown benchmark {raw!r}; choose from {', '.join(BENCHMARKS)}")
        names.extend(m for m in matches if m not in names)
    failed = 0
    for name in names:
        log(f"{name}: starting")
        try:
            module = importlib.import_module(f"benchmarks.{name}")
            path, result = module.run()
        except Exception as exc:  # report the others anyway
            failed += 1
            log(f"{name}: FAILED: {type(exc).__name__}: {exc}")
            continue
        log(f"{name}: wrote {path} in {result['wall_s']} s")
        print(json.dumps({"benchmark": name, "ratio": result["ratio"], "goal": result["goal"]}, indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
