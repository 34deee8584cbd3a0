#!/usr/bin/env python3
"""Runs one SPS-style plugin folder for sessiongate, unmodified.

Requests arrive one JSON object a line on stdin: {"id", "hook", "args", "configuration"}.
Answers go to file descriptor 3 as {"id", "result"} or {"id", "error"}. As SPS does, every
hook call gets a new Plugin(configuration) instance and keyword arguments limited to the
ones the method declares (all of them when it takes **kwargs). Whatever the plugin prints to
stdout or stderr is forwarded line by line as {"id", "log", "stream"}, so the gateway can log
it as printed, tagged with the session of the call; a line longer than the limit given as the
third argument (bytes) is cut, with "dropped" = the bytes cut off. Usage:
sps_runner.py PLUGIN_DIR ENTRY_POINT LOG_LINE_LIMIT
"""
import importlib.util
import inspect
import io
import json
import os
import sys


class _Lines(io.TextIOBase):
    """Forwards what the plugin prints, a line at a time, each cut to `limit` bytes of UTF-8
    (the rest is counted in "dropped"), so a huge print costs neither process its memory."""

    def __init__(self, stream, send, current, limit):
        super().__init__()
        self._stream = stream
        self._send = send
        self._current = current
        self._limit = limit
        self._buffer = ""
        self._dropped = 0

    def writable(self):
        return True

    def write(self, text):
        rest = text
        while True:
            newline = rest.find("\n")
            self._keep(rest if newline < 0 else rest[:newline])
            if newline < 0:
                return len(text)
            self._emit()
            rest = rest[newline + 1:]

    def flush(self):
        if self._buffer or self._dropped:
            self._emit()

    def _keep(self, piece):
        room = max(0, self._limit - len(self._buffer))
        self._buffer += piece[:room]
        if len(piece) > room:
            self._dropped += len(piece[room:].encode("utf-8", "replace"))

    def _emit(self):
        data = self._buffer.encode("utf-8", "replace")
        kept = data[: self._limit].decode("utf-8", "ignore")
        dropped = self._dropped + len(data) - len(kept.encode("utf-8"))
        self._buffer, self._dropped = "", 0
        message = {"id": self._current["id"], "log": kept, "stream": self._stream}
        if dropped:
            message["dropped"] = dropped
        self._send(message)


def _keyword_arguments(method, args):
    params = inspect.signature(method).parameters.values()
    if any(p.kind == inspect.Parameter.VAR_KEYWORD for p in params):
        return dict(args)
    names = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return {k: v for k, v in args.items() if k in names}


def main():
    plugin_dir, entry_point, log_limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
    channel = os.fdopen(3, "w", buffering=1, encoding="utf-8")

    def send(message):
        channel.write(json.dumps(message, allow_nan=False) + "\n")
        channel.flush()

    current = {"id": None}
    sys.stdout = _Lines("stdout", send, current, log_limit)
    sys.stderr = _Lines("stderr", send, current, log_limit)
    sys.path.insert(0, plugin_dir)
    spec = importlib.util.spec_from_file_location("main", os.path.join(plugin_dir, entry_point))
    module = importlib.util.module_from_spec(spec)
    sys.modules["main"] = module
    spec.loader.exec_module(module)
    plugin_class = module.Plugin

    for raw in iter(sys.stdin.readline, ""):
        request = json.loads(raw)
        current["id"] = request["id"]
        try:
            instance = plugin_class(request.get("configuration", ""))
            method = getattr(instance, request["hook"], None)
            if method is None:
                raise NotImplementedError("plugin does not implement " + request["hook"])
            result = method(**_keyword_arguments(method, request["args"]))
            sys.stdout.flush()
            sys.stderr.flush()
            try:
                answer = json.dumps({"id": request["id"], "result": result}, allow_nan=False)
            except (TypeError, ValueError) as err:
                answer = json.dumps({"id": request["id"], "error": "result is not JSON: %s" % err})
            channel.write(answer + "\n")
            channel.flush()
        except Exception as err:  # the plugin's failure is reported, never fatal to the runner
            sys.stdout.flush()
            sys.stderr.flush()
            send({"id": request["id"], "error": "%s: %s" % (type(err).__name__, err)})
        current["id"] = None


if __name__ == "__main__":
    main()
