"""`python -m benchmarks.chaos [--profile short|long] [--seed N] [-o json]`: exit 0 when the
audit is clean."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

from benchmarks.chaos.run import PROFILES, run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profile", choices=sorted(PROFILES), default="short")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=None, help="keep logs here")
    parser.add_argument("--engine", default="chaos", help="name of the extra dockerd it owns")
    parser.add_argument("-o", "--output", choices=["table", "json"], default="table")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="zun-chaos-"))
    workdir.mkdir(parents=True, exist_ok=True)
    report = run(args.profile, workdir, args.seed, args.engine)
    if args.output == "json":
        print(json.dumps(asdict(report), indent=2))
    else:
        print(f"profile {report.profile}: records created {report.records_created}, "
              f"changes {report.changes}, deletes {report.deletes}; applications "
              f"{report.apps_created}, application changes {report.app_changes}")  # fmt: skip
        print(f"faults: {report.faults}")
        print(f"converged {report.seconds_to_converge_after_last_fault:.1f}s after the last fault")
        print(f"findings: {report.findings}")
        for kind, names in report.details.items():
            print(f"  {kind}: {names}")
        print(f"logs in {workdir}")
        print("PASSED" if report.passed else "FAILED")
    sys.exit(0 if report.passed else 1)


if __name__ == "__main__":
    main()
