import os
import sys


def handler(event, context):
    user = event.get("user", "anonymous")
    steps = int(event.get("steps", 3))
    service = os.environ.get("SERVICE", "")
    debug = os.environ.get("DEBUG") == "true"
    written = {"stdout": 0, "stderr": 0}

    def log(level, message):
        if level == "DEBUG" and not debug:
            return
        stream = "stderr" if level in ("WARN", "ERROR") else "stdout"
        print(f"{level} [{service}] {message}", file=getattr(sys, stream), flush=True)
        written[stream] += 1

    log("INFO", f"request {context.get('request_id', '-')} started for user {user}")
    for step in range(1, steps + 1):
        log("DEBUG", f"step {step}/{steps} done")
    log("WARN", "disk usage at 85% (simulated)")
    log("ERROR", "retrying upstream call after a simulated failure")
    log("INFO", "finished")

    return {"user": user, "lines": sum(written.values()), **written}
