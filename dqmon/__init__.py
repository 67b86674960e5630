"""dqmon: declarative data-quality checks published as OpenTelemetry gauges."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("dqmon")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
