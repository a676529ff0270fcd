"""What starts an invocation besides a direct call: HTTP endpoints, schedules, rate limits and the
asynchronous queue (retries, dead letters, destinations)."""
