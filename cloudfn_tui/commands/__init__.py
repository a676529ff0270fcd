"""The `cloudfn` subcommands, one module per area. Each module's `register(sub)` adds its
parsers and sets either `run` (an async function of an open PlatformAPI and the arguments)
or `main` (a function of the arguments that manages the platform itself: console, serve)."""

from cloudfn_tui.commands import cluster, dead_letters, deps, functions, observe, secrets, serve, web

MODULES = [functions, observe, serve, web, secrets, deps, dead_letters, cluster]
