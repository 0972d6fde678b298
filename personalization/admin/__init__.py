"""The app's Django admin: profiles, the consent ledger, topics and the shop-data mirrors.

Thin by design: pages read through the domain's selectors (``consent_states``,
``profiles_with_consent``, ``Product.objects.sensitive()``) and write only through domain
functions; shop data and consent evidence are read-only here.
"""

from .catalogue import ProductAdmin
from .commerce import CartAdmin, EventAdmin, OrderAdmin
from .consent import ConsentRecordAdmin, ConsentWordingAdmin
from .flows import FlowAdmin, FlowEntryAdmin
from .jobs import JobAdmin
from .messaging import CampaignAdmin, MessageAdmin, MessageEventAdmin
from .privacy import SuppressionAdmin
from .profiles import ProfileAdmin, TopicAdmin
from .recommendations import RecommendationModelAdmin
from .segments import SegmentAdmin, SegmentMembershipAdmin

__all__ = [
    "CampaignAdmin",
    "MessageAdmin",
    "MessageEventAdmin",
    "CartAdmin",
    "ConsentRecordAdmin",
    "ConsentWordingAdmin",
    "EventAdmin",
    "FlowAdmin",
    "FlowEntryAdmin",
    "JobAdmin",
    "OrderAdmin",
    "ProductAdmin",
    "ProfileAdmin",
    "RecommendationModelAdmin",
    "SegmentAdmin",
    "SegmentMembershipAdmin",
    "SuppressionAdmin",
    "TopicAdmin",
]
