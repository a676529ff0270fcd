"""The console's widgets, one module per pane."""
