from .catalogue import Product, ProductCategory, PurchaseCycle
from .commerce import Cart, CartLine, CartStatus, IngestSource, Order, OrderLine, OrderStatus
from .consent import (
    ConsentRecord,
    ConsentSource,
    ConsentState,
    ConsentStatus,
    ConsentWording,
    Purpose,
)
from .events import Event, EventName
from .jobs import Job, JobState
from .preferences import PreferenceChange, PreferenceField, PreferenceSource
from .privacy import Suppression, SuppressionReason, SuppressionSource
from .profiles import (
    Channel,
    ChannelPreference,
    Frequency,
    Greeting,
    Profile,
    ProfileAlias,
    Topic,
    TopicPreference,
)
from .recommendations import (
    BuildStatus,
    LearnedInterval,
    ProductNeighbour,
    ProductPopularity,
    RecommendationModel,
)
from .segments import Segment, SegmentDailyCount, SegmentKind, SegmentMembership
from .traits import TRAIT_KEY, Trait, TraitRemoval, TraitSource

__all__ = [
    "BuildStatus",
    "Cart",
    "CartLine",
    "CartStatus",
    "Channel",
    "ChannelPreference",
    "ConsentRecord",
    "ConsentSource",
    "ConsentState",
    "ConsentStatus",
    "ConsentWording",
    "Event",
    "EventName",
    "Frequency",
    "Greeting",
    "IngestSource",
    "Job",
    "JobState",
    "Order",
    "OrderLine",
    "OrderStatus",
    "PreferenceChange",
    "PreferenceField",
    "PreferenceSource",
    "Product",
    "ProductCategory",
    "ProductNeighbour",
    "ProductPopularity",
    "LearnedInterval",
    "Profile",
    "ProfileAlias",
    "Purpose",
    "PurchaseCycle",
    "RecommendationModel",
    "Segment",
    "SegmentDailyCount",
    "SegmentKind",
    "SegmentMembership",
    "Suppression",
    "SuppressionReason",
    "SuppressionSource",
    "Topic",
    "TopicPreference",
    "TRAIT_KEY",
    "Trait",
    "TraitRemoval",
    "TraitSource",
]
