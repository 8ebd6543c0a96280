"""model-audit: audit a trained PyTorch image classifier before it ships."""

__version__ = "0.1.0"
SCHEMA_VERSION = "1.0"

__all__ = ["SCHEMA_VERSION", "__version__"]
