"""The console's panes: their tabs, labels and widgets, and when the layout turns narrow (one
pane at a time, with tabs)."""

from __future__ import annotations

# (tab id, label, widget id to focus)
PANES = [
    ("functions", "Functions", "functions"),
    ("code", "Code", "code"),
    ("event", "Event", "event"),
    ("result", "Result", "pane-result"),
    ("logs", "Logs", "log-view"),
    ("metrics", "Metrics", "pane-metrics"),
    ("history", "History", "history"),
    ("alerts", "Alerts", "alerts-table"),
]
LIVE = ("logs", "metrics", "history", "alerts")
# pane -> its tab id; tab -> its widget id
LIVE_TABS = {"logs": "logs", "metrics": "metrics", "history": "history-tab", "alerts": "alerts"}
LIVE_WIDGETS = {"logs": "pane-logs", "metrics": "pane-metrics", "history-tab": "history", "alerts": "pane-alerts"}
NARROW_WIDTH = 100
NARROW_HEIGHT = 30
