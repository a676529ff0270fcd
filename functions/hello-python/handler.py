import os


def handler(event, context):
    name = event.get("name") if isinstance(event, dict) else None
    greeting = os.environ.get("GREETING", "Hello")
    return {"message": f"{greeting}, {name or 'World'}!", "event": event}
