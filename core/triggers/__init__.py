"""Ways a function is invoked besides a direct call: the asynchronous queue (and, from other
work, HTTP endpoints and schedules)."""
