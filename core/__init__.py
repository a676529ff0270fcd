"""cloudfn's platform engine. Never imports textual: the console is one client among several."""

__version__ = "0.1.0"
