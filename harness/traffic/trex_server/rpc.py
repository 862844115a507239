"""JSON-RPC 2.0 dispatch, as TRex's RPC server speaks it (trex-core doc/trex_rpc_server_spec.asciidoc).

One request is a JSON object ``{"jsonrpc": "2.0", "id": ..., "method": ..., "params": {...}}``; a batch is a
JSON list of them, answered by a list in the same order (trex-stl-lib sends ``add_stream`` as a batch).
Every answer carries ``"jsonrpc": "2.0"`` and the request's ``id``.

Errors are JSON-RPC error objects. TRex adds ``specific_err`` (the text its client shows) to the standard
``code``/``message``; every error here has both, so a client that reads either sees why. A handler reports
a refused request by raising :class:`RpcError`; any other exception in a handler becomes a -32000 error
naming it, never a crash of the server.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

log = logging.getLogger(__name__)

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
SERVER_ERROR = -32000

_MESSAGES = {
    PARSE_ERROR: "Bad JSON Format",
    INVALID_REQUEST: "Invalid Request",
    METHOD_NOT_FOUND: "Method not found",
    INVALID_PARAMS: "Invalid params",
    SERVER_ERROR: "Server error",
}

Handler = Callable[[dict[str, Any]], Any]


class RpcError(Exception):
    """A request the server refuses: becomes a JSON-RPC error with ``specific_err`` = ``text``."""

    def __init__(self, text: str, code: int = SERVER_ERROR) -> None:
        super().__init__(text)
        self.text = text
        self.code = code


def error(req_id: Any, code: int, text: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": req_id,
            "error": {"code": code, "message": _MESSAGES.get(code, "Server error"), "specific_err": text}}


class Dispatcher:
    """Method name -> handler; ``api_h`` checked for every method of an API class."""

    def __init__(self) -> None:
        self.methods: dict[str, tuple[Handler, bool]] = {}
        self.api_handles: set[str] = set()

    def register(self, name: str, handler: Handler, needs_api_h: bool = True) -> None:
        self.methods[name] = (handler, needs_api_h)

    def handle_text(self, text: str) -> str:
        """One request or batch (JSON text) -> its answer (JSON text)."""
        try:
            message = json.loads(text)
        except ValueError as exc:
            return json.dumps(error(None, PARSE_ERROR, f"request is not valid JSON: {exc}"))
        if isinstance(message, list):
            if not message:
                return json.dumps(error(None, INVALID_REQUEST, "empty batch"))
            return json.dumps([self.handle_one(m) for m in message])
        return json.dumps(self.handle_one(message))

    def handle_one(self, message: Any) -> dict[str, Any]:
        if not isinstance(message, Mapping):
            return error(None, INVALID_REQUEST, "a request must be a JSON object")
        req_id = message.get("id")
        if message.get("jsonrpc") != "2.0":
            return error(req_id, INVALID_REQUEST, "'jsonrpc' must be \"2.0\"")
        name = message.get("method")
        if not isinstance(name, str):
            return error(req_id, INVALID_REQUEST, "'method' must be a string")
        params = message.get("params")
        if params is None:
            params = {}
        if not isinstance(params, Mapping):
            return error(req_id, INVALID_PARAMS, f"{name}: 'params' must be a JSON object")
        entry = self.methods.get(name)
        if entry is None:
            return error(req_id, METHOD_NOT_FOUND, f"method '{name}' not found")
        handler, needs_api_h = entry
        api_h = params.get("api_h")
        if needs_api_h and not (isinstance(api_h, str) and api_h in self.api_handles):
            return error(req_id, INVALID_PARAMS,
                         f"{name}: API handler {api_h!r} is not valid: call api_sync first")
        try:
            result = handler(dict(params))
        except RpcError as exc:
            return error(req_id, exc.code, exc.text)
        except Exception as exc:   # a bug in a handler must not take the server down
            log.exception("RPC %s failed", name)
            return error(req_id, SERVER_ERROR, f"{name}: internal error: {type(exc).__name__}: {exc}")
        return {"jsonrpc": "2.0", "id": req_id, "result": {} if result is None else result}


# --- parameter helpers: a missing or mistyped parameter is an INVALID_PARAMS error naming it ------------

def need(params: Mapping[str, Any], key: str, kind: type | tuple[type, ...], method: str) -> Any:
    if key not in params:
        raise RpcError(f"{method}: missing parameter '{key}'", INVALID_PARAMS)
    value = params[key]
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise RpcError(f"{method}: parameter '{key}' must be {_kind_name(kind)}, got {value!r}",
                       INVALID_PARAMS)
    if not isinstance(value, kind):
        raise RpcError(f"{method}: parameter '{key}' must be {_kind_name(kind)}, got {value!r}",
                       INVALID_PARAMS)
    return value


def optional(params: Mapping[str, Any], key: str, kind: type | tuple[type, ...], default: Any,
             method: str) -> Any:
    if key not in params or params[key] is None:
        return default
    return need(params, key, kind, method)


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false", dict: "an object",
             list: "a list"}
    return " or ".join(names.get(k, k.__name__) for k in kinds)
