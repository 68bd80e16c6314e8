"""Pretrained networks (identity, LPIPS, FID, landmarks) by name, with one weight-finding rule.

``load("vggface-fc7")`` builds the network, finds its file (explicit path, ``$FACECTX_WEIGHTS``,
the torch hub cache, a file shipped in an installed package, a download when allowed), checks
its checksum and returns it frozen in eval mode. ``python -m facectx.weights list`` shows what
is installed. See ``registry`` for the rule and ``docs/pretrained.md`` for the entries.
Importing this package builds nothing and touches neither disk nor network.
"""

from facectx.pretrained.registry import (
    ChecksumError,
    Entry,
    RandomWeightsWarning,
    UnknownModelError,
    WeightsFile,
    WeightsNotFoundError,
    get_entry,
    list_entries,
    load,
    register,
    resolve,
)

__all__ = [
    "ChecksumError",
    "Entry",
    "RandomWeightsWarning",
    "UnknownModelError",
    "WeightsFile",
    "WeightsNotFoundError",
    "get_entry",
    "list_entries",
    "load",
    "register",
    "resolve",
]
