"""Where the Hydra configs live: inside the wheel (``facectx/conf``) or the source checkout."""

from __future__ import annotations

from pathlib import Path


def config_dir() -> str:
    """Absolute path of the config root, preferring the copy shipped inside the package."""
    here = Path(__file__).resolve().parent
    packaged = here / "conf"
    if packaged.is_dir():
        return str(packaged)
    checkout = here.parents[1] / "conf"
    if checkout.is_dir():
        return str(checkout)
    raise FileNotFoundError(
        f"facectx configs not found in {packaged} or {checkout}; reinstall facectx."
    )


class ConfigError(ValueError):
    """A config value that cannot work; the message names the key and the fix."""
