# humanize comes from requirements.txt beside this file: cloudfn installs it (uv, wheels only)
# before the function's first version becomes current, and shares it with every function
# that asks for the same packages.
import humanize


def handler(event, context):
    size = int(event.get("bytes", 0))
    count = int(event.get("count", 0))
    return {
        "size": humanize.naturalsize(size),
        "count": humanize.intword(count),
    }
