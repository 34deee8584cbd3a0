#!/usr/bin/env python3
"""An AA plugin as an executable (runtime: process): JSON lines on stdin and stdout.

Accepts the gateway users listed in the configuration (environment variable
SESSIONGATE_PLUGIN_CONFIG, JSON: {"users": ["alice", ...]}), denies everyone else.

    plugins:
      - name: allowlist
        runtime: process
        kind: aa
        command: [python3, ./examples/plugins/process/allowlist.py]
        config: { users: [alice, bob] }
"""
import json
import os
import sys

allowed = set(json.loads(os.environ.get("SESSIONGATE_PLUGIN_CONFIG", "{}")).get("users", []))

for line in sys.stdin:
    request = json.loads(line)
    args = request["args"]
    if request["hook"] in ("authenticate", "authorize"):
        user = args.get("gateway_user")
        verdict = "ACCEPT" if user in allowed else "DENY"
        result = {"verdict": verdict, "reason": None if verdict == "ACCEPT" else "not on the list"}
    else:  # session_ended
        sys.stderr.write("allowlist: session %s ended\n" % args["session_id"])
        result = None
    sys.stdout.write(json.dumps({"id": request["id"], "result": result}) + "\n")
    sys.stdout.flush()
