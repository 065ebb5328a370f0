"""An action log: one JSON line per reconcile (who, controller, key, start, end, wall clock).

Off by default. The chaos suite's auditor reads the logs of several replicas to prove that no
two of them acted at the same time; an operator can use it to see what a replica did.
Lines are appended with O_APPEND, so several processes can share one file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


class ActionLog:
    def __init__(self, path: Path, identity: str) -> None:
        self.identity = identity
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def __call__(self, controller: str, key: str, start: float, end: float) -> None:
        line = {
            "who": self.identity,
            "controller": controller,
            "key": key,
            "start": start,
            "end": end,
        }
        os.write(self._fd, (json.dumps(line, separators=(",", ":")) + "\n").encode())
