"""One call of python-zunclient's `zunclient.client.Client`, run by the e2e test inside
.venv-zunclient (hack/zunclient-venv.sh), printing its result as one JSON line.

    python zunclient_step.py URL TOKEN ACTION [ARG...]

URL is the v1 endpoint (…/v1), TOKEN goes out as X-Auth-Token (the client's `admin_token`
auth with an endpoint override). A client error prints {"error": message, "code": status}.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from zunclient import client  # type: ignore[import-not-found]
from zunclient.common.apiclient import exceptions  # type: ignore[import-not-found]


def _shown(c: Any) -> dict[str, Any]:
    return dict(c._info)


def _call(zun: Any, action: str, args: list[str]) -> Any:  # noqa: PLR0911, PLR0912 - one per action
    ctrs = zun.containers
    match action:
        case "run":
            return _shown(ctrs.run(name=args[0], image=args[1], memory="64"))
        case "list":
            return [_shown(c) for c in ctrs.list()]
        case "get":
            return _shown(ctrs.get(args[0]))
        case "stop":
            return ctrs.stop(args[0], timeout=5) and None
        case "start" | "pause" | "unpause":
            return getattr(ctrs, action)(args[0]) and None
        case "kill":
            return ctrs.kill(args[0], signal="SIGKILL")
        case "logs":
            return ctrs.logs(args[0], stdout=True, stderr=True, tail="all")
        case "execute":
            return ctrs.execute(args[0], command=args[1], run=True)
        case "rename":
            return ctrs.rename(args[0], args[1])[1]
        case "update":
            return _shown(ctrs.update(args[0], memory=args[1]))
        case "reboot":
            return ctrs.restart(args[0], timeout=5) and None
        case "rebuild":
            return ctrs.rebuild(args[0]) and None
        case "stats":
            return ctrs.stats(args[0])
        case "top":
            return ctrs.top(args[0])
        case "delete":
            return ctrs.delete(args[0], stop=True) and None
    raise SystemExit(f"unknown action {action}")


def main() -> None:
    url, token, action, *args = sys.argv[1:]
    zun = client.Client("1.40", auth_token=token, endpoint_override=url)
    try:
        result = _call(zun, action, args)
    except exceptions.HttpError as exc:
        result = {"error": str(exc), "code": exc.http_status}
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
