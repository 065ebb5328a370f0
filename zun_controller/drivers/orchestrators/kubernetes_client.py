"""One Kubernetes API connection from kubeconfig text: bounded, retried, translated calls.

The kubernetes SDK is synchronous. Every request runs on the connection's own small thread pool
(what `asyncio.to_thread` does, with a pool that `close()` can shut down), bounded twice in time
(the SDK's `_request_timeout`, and `asyncio.timeout` as a backstop), and retried with
exponential backoff (tenacity) on transient failures: connection errors, timeouts, 429 and 5xx.
urllib3's own retries are off so tenacity is the only retry loop. Errors are translated once,
here (`translate`): 404 `NotFoundError`, 409 `ConflictError`, 400/422
`PermanentError("InvalidSpec", ...)` naming the field, 401/403 `PermanentError`, the rest
`TransientError`.

The configuration is loaded into an `ApiClient` of this connection only: no global
`kubernetes.config` state, so connections to several clusters live side by side.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
from collections.abc import Callable
from typing import Any

import urllib3.exceptions
from kubernetes import client as kube
from kubernetes import config as kube_config
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
)

from zun_controller.errors import (
    ConflictError,
    InvalidError,
    NotFoundError,
    PermanentError,
    TransientError,
    ZunError,
)
from zun_controller.models.safe_yaml import load_one

Manifest = dict[str, Any]

#: Threads (and pooled HTTP connections) per cluster.
POOL_SIZE = 4
RETRY_ATTEMPTS = 4
RETRY_WAIT_MAX_S = 2.0
CONNECT_TIMEOUT_S = 5.0
BOUND_SLACK_S = 5.0
FIELD_MANAGER = "zun-controller"
APPLY_PATCH = "application/apply-patch+yaml"
_TRANSIENT_STATUS = frozenset({429, 500, 502, 503, 504})


def _causes(exc: Any) -> list[dict[str, Any]]:
    try:
        body = json.loads(exc.body or "{}")
    except (TypeError, ValueError):
        return []
    causes: list[dict[str, Any]] = (body.get("details") or {}).get("causes") or []
    return causes


def _status_message(exc: Any) -> str:
    """The API's Status message, with the fields its causes name (`spec.x: why`)."""
    try:
        body = json.loads(exc.body or "{}")
    except (TypeError, ValueError):
        return str(exc.reason or exc.status)
    named = [f"{c['field']}: {c.get('message', '')}" for c in _causes(exc) if c.get("field")]
    return "; ".join(named) or str(body.get("message") or exc.reason)


def _translate_api(exc: Any, what: str) -> ZunError:
    status = int(exc.status or 0)
    message = f"{what}: {_status_message(exc)}"
    if status == 404:
        return NotFoundError(message)
    # 403 NamespaceTerminating: a namespace on its way out, made again once it is gone
    terminating = any(c.get("reason") == "NamespaceTerminating" for c in _causes(exc))
    if status == 409 or (status == 403 and terminating):
        return ConflictError(message)
    if status in (400, 422):
        return PermanentError("InvalidSpec", message)
    if status in (401, 403):
        return PermanentError("Forbidden" if status == 403 else "Unauthorized", message)
    if status in _TRANSIENT_STATUS or status == 0:
        return TransientError(message)
    return PermanentError("ApiError", message)


def translate(exc: BaseException, what: str) -> ZunError:
    """One SDK / HTTP failure as the package's error hierarchy."""
    if isinstance(exc, ZunError):
        return exc
    if isinstance(exc, kube.ApiException):
        return _translate_api(exc, what)
    if isinstance(exc, urllib3.exceptions.HTTPError | OSError | TimeoutError):
        return TransientError(f"{what}: API server unreachable: {exc}")
    if isinstance(exc, InvalidError):
        return PermanentError("InvalidConfig", f"kubeconfig: {exc.errors[0].reason}")
    if isinstance(exc, InvalidError):
        return PermanentError("InvalidConfig", f"kubeconfig: {exc.errors[0].reason}")
    if isinstance(exc, kube_config.ConfigException):
        return PermanentError("InvalidConfig", f"{what}: {exc}")
    raise exc


def _config_error(exc: Exception) -> PermanentError:
    """Why a kubeconfig does not load, without quoting it: YAML errors would show the line
    (perhaps a token or a key), other errors their text (e.g. bad base64 of embedded certs)."""
    if isinstance(exc, InvalidError):
        return PermanentError("InvalidConfig", f"kubeconfig: {exc.errors[0].reason}")
    if isinstance(exc, kube_config.ConfigException):
        return PermanentError("InvalidConfig", f"kubeconfig: {exc}")
    kind = f"{type(exc).__module__}.{type(exc).__qualname__}".removeprefix("builtins.")
    return PermanentError("InvalidConfig", f"kubeconfig: {kind}")


def api_client(kubeconfig: str) -> Any:
    """An `ApiClient` of its own from kubeconfig text (its current context)."""
    try:
        document = load_one(kubeconfig, "kubeconfig")
        if not isinstance(document, dict):
            raise kube_config.ConfigException("kubeconfig is not a mapping")
        configuration = kube.Configuration()
        # The SDK's config loader has no annotations.
        kube_config.load_kube_config_from_dict(  # type: ignore[no-untyped-call]
            document, client_configuration=configuration, persist_config=False
        )
    except Exception as exc:
        raise _config_error(exc) from None
    configuration.retries = False
    configuration.connection_pool_maxsize = POOL_SIZE
    return kube.ApiClient(configuration)


def decode(response: Any) -> Manifest:
    """The JSON document of an undecoded (`_preload_content=False`) response."""
    try:
        document: Manifest = json.loads(response.data)
    finally:
        response.release_conn()
    return document


class KubeConnection:
    """Bounded, retried, translated calls on one cluster's API."""

    def __init__(self, name: str, kubeconfig: str, *, timeout: float = 20.0) -> None:
        self.name = name
        self.timeout = timeout
        self.api = api_client(kubeconfig)
        self.core = kube.CoreV1Api(self.api)
        self.apps = kube.AppsV1Api(self.api)
        self.version = kube.VersionApi(self.api)
        self._pool = concurrent.futures.ThreadPoolExecutor(POOL_SIZE, f"zun-kube-{name}")

    def options(self) -> dict[str, Any]:
        """Keyword arguments every SDK call takes: undecoded, bounded."""
        return {"_preload_content": False, "_request_timeout": (CONNECT_TIMEOUT_S, self.timeout)}

    async def _once(self, fn: Callable[[], Any], what: str) -> Manifest:
        loop = asyncio.get_running_loop()
        bound = CONNECT_TIMEOUT_S + self.timeout + BOUND_SLACK_S
        try:
            async with asyncio.timeout(bound):  # not wait_for: it can swallow a cancel (3.11)
                return await loop.run_in_executor(self._pool, lambda: decode(fn()))
        except Exception as exc:
            raise translate(exc, what) from exc

    async def call(self, fn: Callable[[], Any], what: str) -> Manifest:
        """Run `fn()` (an SDK call given `options()`) on the pool; its decoded JSON document."""
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(TransientError),
            stop=stop_after_attempt(RETRY_ATTEMPTS) | stop_after_delay(2 * self.timeout),
            wait=wait_exponential(multiplier=0.1, max=RETRY_WAIT_MAX_S),
            reraise=True,
        )
        return await retrying(self._once, fn, what)

    async def get(self, fn: Callable[[], Any], what: str) -> Manifest | None:
        """Like `call`, None when the object does not exist."""
        try:
            return await self.call(fn, what)
        except NotFoundError:
            return None

    def apply_options(self) -> dict[str, Any]:
        """Server-side apply: our field manager, taking fields back from hand edits."""
        return {
            **self.options(),
            "field_manager": FIELD_MANAGER,
            "force": True,
            "_content_type": APPLY_PATCH,
        }

    async def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.api.close()
