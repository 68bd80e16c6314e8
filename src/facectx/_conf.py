"""Where the Hydra configs live (inside the wheel or the source checkout), and how the commands
report a user error: one line and exit code 2."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
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


# Errors whose message is the whole story (it names the file or key and the fix), by module:
# looked up only in modules already imported, since an error of a module never imported cannot
# have been raised, and importing them here would load torch for every command.
_USER_ERRORS = {
    "facectx.checkpoint": ("CheckpointError",),
    "facectx.data.manifest": ("ManifestError",),
    "facectx.faces.io": ("ImageReadError",),
    "facectx.inference.inpainter": ("InpaintError",),
    "facectx.demo": ("AppError",),
    "facectx.pretrained.registry": ("WeightsNotFoundError", "ChecksumError"),
    "facectx.segment.base": ("SegmenterNotAvailableError",),
    "facectx.segment.folder": ("BackgroundImageError",),
}


def _user_errors() -> tuple[type[BaseException], ...]:
    """Errors a user fixes by changing the command: a config value, a path that is not there, a
    checkpoint, an unprepared folder, an output folder of other settings, a face not found."""
    import sys

    from facectx._jobrecord import JobStoppedError, OutputFolderError

    types: list[type[BaseException]] = [ConfigError, OutputFolderError, JobStoppedError]
    # the user's paths: a missing input, a file given for a folder or the other way round
    types += [FileNotFoundError, NotADirectoryError, IsADirectoryError]
    for module, names in _USER_ERRORS.items():
        loaded = sys.modules.get(module)
        types += [getattr(loaded, n) for n in names if loaded is not None and hasattr(loaded, n)]
    return tuple(types)


@contextmanager
def cli_errors(log: logging.Logger) -> Iterator[None]:
    """Around a command's run: a user error (see :func:`_user_errors`, or a mandatory key left
    out) is logged as one line and ends the process with exit code 2, without a traceback."""
    import sys

    from omegaconf.errors import MissingMandatoryValue

    try:
        yield
    except MissingMandatoryValue as e:
        log.error("%s= is required: pass %s=... on the command line", e.full_key, e.full_key)
        sys.exit(2)
    except Exception as e:
        from facectx._jobrecord import is_environmental, job_stopped

        if is_environmental(e):  # e.g. the manifest append hit a full disk
            e = job_stopped(e, "the current item", "the output folder")
        elif not isinstance(e, _user_errors()):
            raise
        log.error("%s", e)
        sys.exit(2)


def hydra_command(config_name: str, run, log: logging.Logger, argv_hook=None) -> None:
    """The one way a facectx command starts: compose ``conf/<config_name>.yaml`` with the
    command-line overrides (Hydra), then ``run(cfg)`` inside :func:`cli_errors`.

    Every CLI module's ``main()`` is this call and nothing else, so ``--help``, ``-m``
    multiruns, the run folder and the one-line user errors behave the same in all of them.
    ``argv_hook`` may rewrite ``sys.argv`` first (``inpaint``'s ``mask=PATH`` shorthand).
    """
    import sys

    import hydra

    if argv_hook is not None:
        sys.argv = argv_hook(sys.argv)
    if any(a in ("--help", "-h") for a in sys.argv[1:]):
        print(command_help(config_name, module_name=_command_module(run, config_name)))
        return

    def entry(cfg) -> None:
        with cli_errors(log):
            run(cfg)

    # Hydra names the job (and its log file, e.g. train.log) after the task function's module:
    # the command's own module, also when it runs as ``python -m facectx.<command>``.
    entry.__module__ = _command_module(run, config_name)
    hydra.main(version_base="1.3", config_path=config_dir(), config_name=config_name)(entry)()


def _command_module(run, config_name: str) -> str:
    """``facectx.<command>``: ``run``'s module, or the ``-m`` module when run is in __main__."""
    import sys

    module = run.__module__
    if module == "__main__":
        spec = getattr(sys.modules["__main__"], "__spec__", None)
        module = spec.name if spec is not None else f"facectx.{config_name}"
    return module


def command_help(config_name: str, module_name: str | None = None) -> str:
    """``--help`` of a command: its usage (the config file's leading comments), every option
    with its default and comment (the file itself, less the defaults list), and the options of
    the config groups it composes. Hydra's own help stays at ``--hydra-help``."""
    root = Path(config_dir())
    lines = (root / f"{config_name}.yaml").read_text(encoding="utf-8").splitlines()
    usage: list[str] = []
    while lines and lines[0].startswith("#"):
        usage.append(lines.pop(0).lstrip("#").rstrip()[1:] if lines[0].startswith("# ") else "")
    groups: list[tuple[str, str]] = []
    body: list[str] = []
    in_defaults = False
    for line in lines:
        if line.startswith("defaults:"):
            in_defaults = True
            continue
        if in_defaults and (line.startswith("  ") or not line.strip()):
            item = line.split("#")[0].strip().removeprefix("- ").strip()
            if ":" in item:
                group, _, choice = item.partition(":")
                group = group.strip().removeprefix("override /")
                if group not in ("hydra", "paths") and (root / group).is_dir():
                    groups.append((group, choice.strip()))
            continue
        in_defaults = False
        body.append(line)
    name = module_name or f"facectx.{config_name}"
    out = [f"python -m {name}: options as key=value, config groups as group=option", ""]
    out += [*usage, "", f"== Options (conf/{config_name}.yaml; default, then what it does) =="]
    out += [line for line in body if not line.startswith("task:")]
    if groups:
        out += ["", "== Config groups (group=option; [default]) =="]
        for group, choice in groups:
            options = sorted(p.stem for p in (root / group).glob("*.yaml"))
            shown = ", ".join(f"[{o}]" if o == choice else o for o in options)
            out.append(f"  {group}: {shown}" + ("" if choice not in ("null", "") else " (none)"))
    out += [
        "",
        "??? marks a required option. A group's own keys are options too (<group>.<key>=value);",
        "`--cfg job` prints the composed config, `--hydra-help` Hydra's own help, `-m` a sweep.",
    ]
    return "\n".join(out).rstrip() + "\n"
