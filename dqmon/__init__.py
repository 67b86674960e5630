"""dqmon: declarative data-quality checks published as OpenTelemetry gauges."""

# The one place the version is written: pyproject.toml reads it from here (setuptools'
# dynamic `attr`), so `dqmon --version` needs no importlib.metadata lookup (issue 11).
__version__ = "0.1.0"
