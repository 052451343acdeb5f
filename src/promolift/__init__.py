"""promolift: which customer should get which promotion, and what will it do to profit."""

from promolift._version import __version__

__all__ = ["__version__"]
