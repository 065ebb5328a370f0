"""Kubernetes-style resource quantities: memory as "256Mi" / "1G" / bytes, cpu as 0.5 or "500m"."""

from __future__ import annotations

import math
import re
from typing import Annotated

from pydantic import BeforeValidator

_SUFFIX = {
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}
_MEMORY = re.compile(r"^([0-9]+)(|k|M|G|T|Ki|Mi|Gi|Ti)$")
_CPU = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(m?)$")


def parse_memory(value: object) -> int:
    """Bytes from an int or a quantity string; raises ValueError with the accepted forms."""
    if isinstance(value, bool):
        raise ValueError("must be a byte count or a quantity such as 256Mi")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("must not be negative")
        return value
    match = _MEMORY.match(str(value).strip())
    if not match:
        raise ValueError(f"{value!r} is not a quantity: use bytes or a suffix k|M|G|T|Ki|Mi|Gi|Ti")
    return int(match.group(1)) * _SUFFIX[match.group(2)]


def parse_cpu(value: object) -> float:
    """Cores from a number or "500m"; raises ValueError with the accepted forms."""
    if isinstance(value, bool):
        raise ValueError("must be a number of cores such as 0.5 or 500m")
    if isinstance(value, int | float):
        cores = float(value)
    else:
        match = _CPU.match(str(value).strip())
        if not match:
            raise ValueError(
                f"{value!r} is not a cpu quantity: use cores (0.5) or millicores (500m)"
            )
        cores = float(match.group(1)) / (1000 if match.group(2) else 1)
    if not math.isfinite(cores):
        raise ValueError("must be a finite number of cores")
    if cores < 0:
        raise ValueError("must not be negative")
    return cores


MemoryBytes = Annotated[int, BeforeValidator(parse_memory, json_schema_input_type=int | str)]
Cores = Annotated[float, BeforeValidator(parse_cpu, json_schema_input_type=float | str)]
