"""Insitu SDK for Python applications (standard library only).

Inside the agent's sandbox this module is importable as ``insitu`` (the agent mounts it
read-only and sets PYTHONPATH). It reads datasets through the agent's data API and serves
the application's HTTP endpoints on the listening socket the agent hands over as the
descriptor in ``INSITU_LISTEN_FD`` (or on the path in ``INSITU_LISTEN`` outside the agent).

    import insitu

    def totals(request):
        out = {}
        for row in insitu.read_dataset("sales", columns=["store", "amount"], where=[("amount", ">", 10)]):
            out[row["store"]] = out.get(row["store"], 0) + float(row["amount"])
        return out

    insitu.serve({"GET /totals": totals})
"""

import http.client
import json
import os
import socket
import socketserver
import sys
import traceback
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, quote, unquote, urlsplit

__all__ = ["DataApiError", "list_datasets", "read_dataset", "serve", "respond"]


class DataApiError(Exception):
    """An error answered by the data API, with its stable code (e.g. INSITU_DATASET_NOT_DECLARED)."""

    def __init__(self, code, message, status=500):
        super().__init__(message)
        self.code = code
        self.status = status


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=None):
        super().__init__("data-api", timeout=timeout)
        self._path = path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if self.timeout is not None:
            sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


def _socket_path(socket_path):
    path = socket_path or os.environ.get("INSITU_DATA_API")
    if not path:
        raise DataApiError("INSITU_DATA_SOURCE_UNAVAILABLE", "no data API: INSITU_DATA_API is not set", 503)
    return path


def _request(method, path, body, socket_path):
    connection = _UnixConnection(_socket_path(socket_path))
    payload = None if body is None else json.dumps(body).encode("utf-8")
    headers = {} if payload is None else {"content-type": "application/json"}
    try:
        connection.request(method, path, body=payload, headers=headers)
        response = connection.getresponse()
    except OSError as error:
        connection.close()
        raise DataApiError("INSITU_DATA_SOURCE_UNAVAILABLE", "data API unreachable: %s" % error, 503)
    if response.status != 200:
        text = response.read().decode("utf-8", "replace")
        connection.close()
        try:
            error = json.loads(text)["error"]
        except (ValueError, KeyError, TypeError):
            raise DataApiError("INSITU_INTERNAL", "data API answered %d: %s" % (response.status, text[:200]), response.status)
        raise DataApiError(error["code"], error["message"], response.status)
    return connection, response


def list_datasets(socket_path=None):
    """The datasets this application may read, with their columns."""
    connection, response = _request("GET", "/v1/datasets", None, socket_path)
    try:
        return json.loads(response.read().decode("utf-8"))["datasets"]
    finally:
        connection.close()


def _filters(where):
    out = []
    for item in where or []:
        if isinstance(item, dict):
            out.append(item)
        elif len(item) == 2:
            out.append({"column": item[0], "op": item[1]})
        else:
            out.append({"column": item[0], "op": item[1], "value": item[2]})
    return out


def _orders(order_by):
    if order_by is None:
        return None
    items = order_by if isinstance(order_by, (list, tuple)) else [order_by]
    out = []
    for item in items:
        if isinstance(item, dict):
            out.append(item)
        elif item.startswith("-"):
            out.append({"column": item[1:], "direction": "desc"})
        else:
            out.append({"column": item})
    return out


def read_dataset(name, columns=None, where=None, order_by=None, limit=None, offset=None,
                 group_by=None, aggregates=None, arrays=False, socket_path=None):
    """Read a dataset through the agent's data API; yields rows (dicts, or lists with arrays=True).

    ``where`` is a list of (column, op, value) tuples or dicts; ops: = != < <= > >= in like,
    "is null", "is not null". ``order_by``: "col", "-col" (descending) or a list of them.
    ``aggregates``: dicts like {"fn": "sum", "column": "amount", "as": "total"}.
    """
    query = {}
    if columns is not None:
        query["columns"] = list(columns)
    if where:
        query["where"] = _filters(where)
    orders = _orders(order_by)
    if orders:
        query["orderBy"] = orders
    if limit is not None:
        query["limit"] = limit
    if offset is not None:
        query["offset"] = offset
    if group_by is not None:
        query["groupBy"] = list(group_by)
    if aggregates is not None:
        query["aggregates"] = list(aggregates)
    connection, response = _request("POST", "/v1/datasets/%s/query" % quote(name, safe=""), query, socket_path)
    names = []
    ended = False
    try:
        for raw in response:
            line = raw.decode("utf-8").rstrip("\n")
            if not line:
                continue
            if line[0] == "[":
                values = json.loads(line)
                yield values if arrays else dict(zip(names, values))
                continue
            control = json.loads(line)
            if "columns" in control:
                names = [c["name"] for c in control["columns"]]
            elif "error" in control:
                raise DataApiError(control["error"]["code"], control["error"]["message"])
            elif "end" in control:
                ended = True
    finally:
        connection.close()
    if not ended:
        raise DataApiError("INSITU_DATA_SOURCE_UNAVAILABLE", "the answer for %s ended early" % name, 502)


class _Response(object):
    def __init__(self, status, body, headers):
        self.status = status
        self.body = body
        self.headers = headers or {}


def respond(status, body=None, headers=None):
    """Return this from a handler to choose the status and headers."""
    return _Response(status, body, headers)


class Request(object):
    """What a handler receives: method, path, params ({name} segments), query (dict of lists), headers, body()."""

    def __init__(self, method, path, params, query, headers, body):
        self.method = method
        self.path = path
        self.params = params
        self.query = query
        self.headers = headers
        self._body = body

    def body(self):
        return self._body

    def json(self):
        return json.loads(self._body.decode("utf-8") or "null")


def _compile(handlers):
    routes = []
    for key, handler in handlers.items():
        method, _, path = key.strip().partition(" ")
        if not path.startswith("/"):
            raise ValueError('route "%s" must look like "GET /path/{param}"' % key)
        routes.append((method.upper(), path.split("/")[1:], handler))
    return routes


def _match(routes, method, path):
    parts = path.split("/")[1:]
    wrong_method = False
    for route_method, route_parts, handler in routes:
        if len(route_parts) != len(parts):
            continue
        params = {}
        ok = True
        for pattern, actual in zip(route_parts, parts):
            if pattern.startswith("{") and pattern.endswith("}"):
                if actual == "":
                    ok = False
                    break
                params[pattern[1:-1]] = unquote(actual)
            elif pattern != actual:
                ok = False
                break
        if not ok:
            continue
        if route_method == method or (method == "HEAD" and route_method == "GET"):
            return handler, params
        wrong_method = True
    return ("method" if wrong_method else None), None


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def serve(handlers, socket_path=None):
    """Serve ``{"GET /path/{param}": handler}`` on INSITU_LISTEN_FD (or INSITU_LISTEN); a handler returns a JSON value or respond(...).

    ``GET /healthz`` answers 200 unless you define it. Blocks forever.
    """
    fd_text = None if socket_path else os.environ.get("INSITU_LISTEN_FD")
    path = socket_path or os.environ.get("INSITU_LISTEN")
    if not fd_text and not path:
        raise RuntimeError("no socket to serve on: neither INSITU_LISTEN_FD nor INSITU_LISTEN is set")
    routes = _compile(handlers)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format, *args):
            pass

        def _send(self, status, body, headers=None):
            if isinstance(body, bytes):
                data, kind = body, "application/octet-stream"
            elif isinstance(body, str):
                data, kind = body.encode("utf-8"), "text/plain; charset=utf-8"
            elif body is None:
                data, kind = b"", None
            else:
                data, kind = json.dumps(body).encode("utf-8"), "application/json"
            self.send_response(status)
            if kind:
                self.send_header("content-type", kind)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def _read_body(self):
            # A body comes with a content-length or chunked (RFC 9112 7.1); None when it is malformed.
            if "chunked" in (self.headers.get("transfer-encoding") or "").lower():
                parts = []
                while True:
                    line = self.rfile.readline(65537)
                    if not line.endswith(b"\n"):
                        return None
                    try:
                        size = int(line.split(b";", 1)[0].strip(), 16)
                    except ValueError:
                        return None
                    if size == 0:
                        # Trailer fields, if any, end with an empty line.
                        while True:
                            trailer = self.rfile.readline(65537)
                            if trailer in (b"\r\n", b"\n", b""):
                                break
                        return b"".join(parts)
                    chunk = self.rfile.read(size)
                    if len(chunk) != size or self.rfile.readline(3) not in (b"\r\n", b"\n"):
                        return None
                    parts.append(chunk)
            try:
                length = int(self.headers.get("content-length") or 0)
            except ValueError:
                return None
            return self.rfile.read(length) if length > 0 else b""

        def _handle(self):
            url = urlsplit(self.path)
            handler, params = _match(routes, self.command, url.path)
            body = self._read_body()
            if body is None:
                return self._send(400, {"error": {"code": "BAD_REQUEST", "message": "the request body is not valid HTTP/1.1 framing"}})
            if handler is None or handler == "method":
                if handler is None and url.path == "/healthz":
                    return self._send(200, {"ok": True})
                code = 405 if handler == "method" else 404
                return self._send(code, {"error": {"code": "METHOD_NOT_ALLOWED" if code == 405 else "NOT_FOUND", "message": "%s %s" % (self.command, url.path)}})
            request = Request(self.command, url.path, params, parse_qs(url.query), dict(self.headers), body)
            try:
                result = handler(request)
            except Exception:
                traceback.print_exc(file=sys.stderr)
                return self._send(500, {"error": {"code": "APP_ERROR", "message": "the application failed to answer"}})
            if isinstance(result, _Response):
                return self._send(result.status, result.body, result.headers)
            return self._send(200, result)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle

    if fd_text:
        # The agent binds and listens on the socket itself and hands it over as a descriptor.
        server = _Server(None, Handler, bind_and_activate=False)
        server.socket.close()
        server.socket = socket.socket(fileno=int(fd_text))
        server.server_address = server.socket.getsockname()
    else:
        try:
            os.unlink(path)
        except OSError:
            pass
        server = _Server(path, Handler)
    server.serve_forever()


def job_args():
    """The arguments the job was submitted with (INSITU_JOB_ARGS), or None."""
    text = os.environ.get("INSITU_JOB_ARGS")
    return json.loads(text) if text else None


def write_result(name, data):
    """Write one result file of a job into its output directory (INSITU_OUTPUT_DIR).

    A dict or list is written as JSON; str and bytes as they are. The provider's result
    policy (size, count, extensions) decides what leaves; the agent checks after the job.
    """
    import re

    directory = os.environ.get("INSITU_OUTPUT_DIR")
    if not directory:
        raise RuntimeError("INSITU_OUTPUT_DIR is not set: write_result works inside a job")
    if not re.match(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$", name):
        raise ValueError("result name: letters, digits, '.', '_' and '-' only, no directories")
    if isinstance(data, (dict, list)):
        data = json.dumps(data) + "\n"
    if isinstance(data, str):
        data = data.encode("utf-8")
    with open(os.path.join(directory, name), "xb") as out:
        out.write(data)
