"""Load, validate and encode campaign data."""

from promolift.data.encode import FeatureEncoder
from promolift.data.load import CampaignData, load_campaign, load_customers, read_table
from promolift.data.quality import QualityReport, data_quality

__all__ = ["CampaignData", "FeatureEncoder", "QualityReport", "data_quality", "load_campaign",
           "load_customers", "read_table"]
