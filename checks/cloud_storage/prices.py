"""What stored bytes cost: list prices per storage class and region, and the owner's currency.

Owners read money, not bytes, so every size the cloud check measures passes
through here before it reaches a notice. The default table is AWS S3's public
list price for the first 50 TB of each class, in USD per GB-month (a GB being
2**30 bytes, as AWS bills it); negotiated prices go in the config (`prices`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

PRICES_AS_OF = "2024-11-01"
"""The date the default list prices were read from the AWS S3 pricing page."""
GB = float(2**30)
DAYS_PER_MONTH = 30.4375

STANDARD = "STANDARD"
CLASSES = ("STANDARD", "INTELLIGENT_TIERING", "STANDARD_IA", "ONEZONE_IA", "REDUCED_REDUNDANCY",
           "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE")
OTHER = "OTHER"
"""Cost Explorer usage that is not storage (requests, transfer): money without bytes."""

_US = {"STANDARD": 0.023, "INTELLIGENT_TIERING": 0.023, "STANDARD_IA": 0.0125, "ONEZONE_IA": 0.01,
       "REDUCED_REDUNDANCY": 0.024, "GLACIER_IR": 0.004, "GLACIER": 0.0036, "DEEP_ARCHIVE": 0.00099}
DEFAULT_PRICES: Mapping[str, Mapping[str, float]] = {
    "us-east-1": _US,
    "us-east-2": _US,
    "us-west-2": _US,
    "eu-west-1": _US,
    "eu-central-1": {"STANDARD": 0.0245, "INTELLIGENT_TIERING": 0.0245, "STANDARD_IA": 0.0135,
                     "ONEZONE_IA": 0.011, "REDUCED_REDUNDANCY": 0.0264, "GLACIER_IR": 0.005, "GLACIER": 0.0045,
                     "DEEP_ARCHIVE": 0.0018},
    "ap-northeast-1": {"STANDARD": 0.025, "INTELLIGENT_TIERING": 0.025, "STANDARD_IA": 0.0138,
                       "ONEZONE_IA": 0.011, "REDUCED_REDUNDANCY": 0.0264, "GLACIER_IR": 0.005,
                       "GLACIER": 0.0045, "DEEP_ARCHIVE": 0.002},
}
FALLBACK_REGION = "us-east-1"

# CloudWatch AWS/S3 StorageType -> the class whose price applies.
CLOUDWATCH_TYPES: Mapping[str, str] = {
    "StandardStorage": "STANDARD",
    "IntelligentTieringFAStorage": "INTELLIGENT_TIERING",
    "IntelligentTieringIAStorage": "STANDARD_IA",
    "IntelligentTieringAIAStorage": "GLACIER_IR",
    "IntelligentTieringAAStorage": "GLACIER",
    "IntelligentTieringDAAStorage": "DEEP_ARCHIVE",
    "StandardIAStorage": "STANDARD_IA",
    "StandardIASizeOverhead": "STANDARD_IA",
    "OneZoneIAStorage": "ONEZONE_IA",
    "OneZoneIASizeOverhead": "ONEZONE_IA",
    "ReducedRedundancyStorage": "REDUCED_REDUNDANCY",
    "GlacierInstantRetrievalStorage": "GLACIER_IR",
    "GlacierIRSizeOverhead": "GLACIER_IR",
    "GlacierStorage": "GLACIER",
    "GlacierStagingStorage": "GLACIER",
    "GlacierObjectOverhead": "GLACIER",
    "GlacierS3ObjectOverhead": "STANDARD",
    "DeepArchiveStorage": "DEEP_ARCHIVE",
    "DeepArchiveObjectOverhead": "DEEP_ARCHIVE",
    "DeepArchiveS3ObjectOverhead": "STANDARD",
    "DeepArchiveStagingStorage": "DEEP_ARCHIVE",
}

# Cost Explorer usage types (after the region prefix such as "USE1-") -> storage class.
USAGE_TYPES: Mapping[str, str] = {
    "TimedStorage-ByteHrs": "STANDARD",
    "TimedStorage-INT-FA-ByteHrs": "INTELLIGENT_TIERING",
    "TimedStorage-INT-IA-ByteHrs": "STANDARD_IA",
    "TimedStorage-SIA-ByteHrs": "STANDARD_IA",
    "TimedStorage-ZIA-ByteHrs": "ONEZONE_IA",
    "TimedStorage-RRS-ByteHrs": "REDUCED_REDUNDANCY",
    "TimedStorage-GIR-ByteHrs": "GLACIER_IR",
    "TimedStorage-GlacierByteHrs": "GLACIER",
    "TimedStorage-GDA-ByteHrs": "DEEP_ARCHIVE",
}


def class_of_usage_type(usage_type: str) -> str:
    """'USE1-TimedStorage-SIA-ByteHrs' -> 'STANDARD_IA'; anything not storage -> OTHER."""
    for candidate in (usage_type, usage_type.split("-", 1)[-1]):
        if candidate in USAGE_TYPES:
            return USAGE_TYPES[candidate]
    return OTHER


def class_of_listing(storage_class: str | None) -> str:
    """ListObjectsV2's StorageClass (absent on some S3-compatible servers) -> a priced class."""
    name = (storage_class or STANDARD).upper()
    return name if name in CLASSES else STANDARD


@dataclass(frozen=True, slots=True)
class PriceBook:
    """USD prices per GB-month for one region, and the rate to the owner's currency."""

    region: str
    usd_per_gb_month: Mapping[str, float]
    currency: str = "USD"
    usd_rate: float = 1.0
    """Units of `currency` per US dollar."""

    @classmethod
    def for_region(cls, region: str, overrides: Mapping[str, float] | None = None, currency: str = "USD",
                   usd_rate: float = 1.0) -> "PriceBook":
        table = dict(DEFAULT_PRICES.get(region, DEFAULT_PRICES[FALLBACK_REGION]))
        table.update({name.upper(): price for name, price in (overrides or {}).items()})
        return cls(region, table, currency, usd_rate)

    @property
    def source(self) -> str:
        listed = self.region in DEFAULT_PRICES
        return (f"AWS S3 list prices as of {PRICES_AS_OF} for {self.region if listed else FALLBACK_REGION}"
                f"{'' if listed else f' (no table for {self.region})'}, USD per GB-month, config overrides applied")

    def usd_per_month(self, size_bytes: float, storage_class: str) -> float:
        """What `size_bytes` in `storage_class` costs per month, in USD."""
        price = self.usd_per_gb_month.get(storage_class, self.usd_per_gb_month[STANDARD])
        return size_bytes / GB * price

    def money(self, usd: float) -> float:
        """USD -> the owner's currency."""
        return usd * self.usd_rate
