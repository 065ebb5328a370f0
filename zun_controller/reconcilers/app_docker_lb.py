"""The Docker orchestrator's load balancer: an haproxy configuration whose backends are the
ready replicas only, and its reload.

The balancer is an ordinary Container record (the image is configurable; hack/images.sh
builds zun-test/haproxy:2.6, in master-worker mode). A new configuration reaches it through
the Runtime port's exec: written beside the live file, checked with `haproxy -c`, renamed
into place (atomic), then SIGUSR2 to the master (PID 1), which starts new workers on it
while the old ones finish their connections. No bind mount is needed, so this works on any
Host the balancer is placed on, not only one sharing the controller's filesystem; a
recreated balancer container simply gets the configuration pushed again.

Membership is the health gate (only replicas whose Container is Ready, i.e. passing their own
healthcheck); haproxy's own checks are TCP connects, which only notice a server that went away
between two reloads, and `option redispatch` with retries moves such a request to another
server. (An `option httpchk` from the target template would judge old replicas by the new
revision's healthcheck: a failing new check took every good server down, measured.)
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from zun_controller.drivers.runtime.base import Runtime
from zun_controller.errors import TransientError
from zun_controller.models.application import Application

CONFIG_DIR = "/usr/local/etc/haproxy"
_RELOAD = (
    'set -e; d="$0"; printf %s "$1" | base64 -d > "$d/.haproxy.cfg.new"; '
    'haproxy -c -q -f "$d/.haproxy.cfg.new"; mv -f "$d/.haproxy.cfg.new" "$d/haproxy.cfg"; '
    "kill -USR2 1"
)


@dataclass(frozen=True)
class Backend:
    name: str
    address: str  # IP on the network the balancer shares with the replicas


def render(app: Application, backends: list[Backend]) -> str:
    lines = [
        "global\n    maxconn 1024\n",
        "defaults\n    mode tcp\n    option redispatch\n    retries 3\n"
        "    timeout connect 1s\n    timeout client 30s\n    timeout server 30s\n"
        "    default-server check inter 1s fall 2 rise 1\n",
    ]
    service = app.spec.service
    for port in service.ports if service else []:
        lines.append(
            f"frontend p{port.port}\n    bind :{port.port}\n    default_backend b{port.port}\n"
        )
        body = f"backend b{port.port}\n    balance roundrobin\n"
        for b in sorted(backends, key=lambda b: b.name):
            body += f"    server {b.name} {b.address}:{port.target_port}\n"
        lines.append(body)
    return "\n".join(lines)


async def push(runtime: Runtime, container_id: str, config: str) -> None:
    """Replace the balancer's configuration atomically and reload it."""
    encoded = base64.b64encode(config.encode()).decode()
    result = await runtime.exec(container_id, ["sh", "-c", _RELOAD, CONFIG_DIR, encoded])
    if result.exit_code != 0:
        detail = result.output.decode(errors="replace")[-300:]
        raise TransientError(f"load balancer reload failed ({result.exit_code}): {detail}")
