"""What starts an invocation besides a direct call: HTTP endpoints, schedules, rate limits."""
