"""Messaging: campaigns, the message ledger, the guardrail policy, and the dispatcher.

Sources (campaigns now, flows next) plan ``Message`` rows; the dispatcher claims due rows,
asks the policy (:mod:`.policy`), renders (:mod:`.render`) and sends through Django's email
API (an Anymail backend in production), exactly once per dedupe key.
"""

from .campaigns import (
    AudienceCount,
    CampaignStateError,
    campaign_audience,
    campaign_audience_count,
    campaign_cancel,
    campaign_plan,
    campaign_schedule,
    campaigns_due,
    campaigns_finish,
)
from .dispatch import DispatchReport, messages_dispatch, messages_dispatch_batch
from .lint import CampaignLintError, LintIssue, LintReport, campaign_lint
from .policy import Decision, DecisionReason
from .sweep import SweepReport, messages_sweep

__all__ = [
    "AudienceCount",
    "CampaignLintError",
    "CampaignStateError",
    "Decision",
    "DecisionReason",
    "DispatchReport",
    "LintIssue",
    "LintReport",
    "SweepReport",
    "campaign_audience",
    "campaign_audience_count",
    "campaign_cancel",
    "campaign_lint",
    "campaign_plan",
    "campaign_schedule",
    "campaigns_due",
    "campaigns_finish",
    "messages_dispatch",
    "messages_dispatch_batch",
    "messages_sweep",
]
