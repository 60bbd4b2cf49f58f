"""pyoci: an OCI-compliant low-level container runtime."""

__version__ = "0.1.0"
SPEC_VERSION = "1.3.0"
