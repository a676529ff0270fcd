"""Per-function dependencies (issue 15): a function's manifest (requirements.txt, package.json)
is checked here, installed once per content into a shared, content-addressed cache by a
sandboxed installer (uv, npm), and mounted read-only into the function's workers.

manifest.py  what a manifest may hold; which manifest a function has
cache.py     the content-addressed environments on disk, LRU-collected
installers.py the uv and npm command lines, run like builds (core/executors/builds.py)
manager.py   ensure(): one install per key at a time, build events, the counts tests read
"""
