"""Flows: welcome, abandoned cart, browse abandonment, post-purchase, replenishment, win-back,
loyal and birthday journeys, planned into the messaging ledger step by step.

Public surface:

- :func:`flows_run` / :func:`flow_run` (Beat, every minute): new entries from each flow's
  trigger, exits, and the due steps planned as ``Message`` rows (source ``flow``), which the
  dispatcher sends through the same policy as campaigns;
- :func:`flows_ensure` creates the default flows after ``migrate`` (each on, with its steps);
- the flow's send-time rules (exits again, the per-flow limit, the pace between steps) are
  registered with the dispatcher on import (:mod:`.checks`).
"""

from ..messaging.sources import source_check_register
from ..models import MessageSource
from .advance import FlowReport, entries_exit, flow_run, flows_run
from .checks import flow_message_checks
from .defaults import DEFAULTS, flows_ensure
from .triggers import TRIGGERS, flow_enter

source_check_register(MessageSource.FLOW, flow_message_checks)

__all__ = [
    "DEFAULTS",
    "TRIGGERS",
    "FlowReport",
    "entries_exit",
    "flow_enter",
    "flow_message_checks",
    "flow_run",
    "flows_ensure",
    "flows_run",
]
