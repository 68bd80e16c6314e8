"""The package version, on the lowest floor so that any module can record it without
importing the package's lazy top level."""

__version__ = "0.1.0"
