"""`python -m monitoring.events serve ...`: the same command as `onevision events serve`."""
from monitoring.events.cli import events_app

events_app(prog_name="onevision events")
