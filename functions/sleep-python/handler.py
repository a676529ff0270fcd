import asyncio
import time


async def handler(event, context):
    seconds = float(event.get("seconds", 1))
    if seconds < 0:
        raise ValueError(f"seconds must not be negative, got {seconds}")
    start = time.monotonic()
    await asyncio.sleep(seconds)
    return {"requested": seconds, "slept": round(time.monotonic() - start, 3)}
