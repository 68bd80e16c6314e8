"""Where the Hydra configs live (inside the wheel or the source checkout), and how the commands
report a user error: one line and exit code 2, also for a mistake in the command line itself
(an unknown key or group option, a wrong type, a value out of range, a device not there), which
is found before Hydra makes a run folder and before anything is built."""

from __future__ import annotations

import difflib
import fnmatch
import logging
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any


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
    "facectx.pretrained.registry": ("WeightsNotFoundError", "ChecksumError", "UnknownModelError"),
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


def hydra_command(
    config_name: str,
    run,
    log: logging.Logger,
    argv_hook=None,
    check: Callable[[Any], None] | None = None,
) -> None:
    """The one way a facectx command starts: check the command line
    (:func:`check_command_line`), compose ``conf/<config_name>.yaml`` with the overrides
    (Hydra), then ``run(cfg)`` inside :func:`cli_errors`.

    Every CLI module's ``main()`` is this call and nothing else, so ``--help``, ``-m``
    multiruns, the run folder and the one-line user errors behave the same in all of them.
    ``argv_hook`` may rewrite ``sys.argv`` first (``inpaint``'s ``mask=PATH`` shorthand);
    ``check(cfg)`` is the command's own fast check of values (no torch, nothing built), run on
    every job's config before Hydra starts the first.
    """
    import sys

    import hydra

    if argv_hook is not None:
        sys.argv = argv_hook(sys.argv)
    if any(a in ("--help", "-h") for a in sys.argv[1:]):
        print(command_help(config_name, module_name=_command_module(run, config_name)))
        return
    # Hydra prints its own composition errors over many lines and exits with 1: find them (and
    # values that cannot work) first, and say them in one line with the user-error exit code.
    with _console(log), cli_errors(log):
        check_command_line(config_name, sys.argv[1:], check)

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


@contextmanager
def _console(log: logging.Logger) -> Iterator[None]:
    """Before Hydra has set up logging: ``log``'s lines on stdout, in Hydra's console format,
    so an error found early reads like one found in the job. Only there: handlers an earlier
    run in this process left on the root logger may write to streams since closed."""
    import sys

    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"))
    log.addHandler(handler)
    propagate, log.propagate = log.propagate, False
    try:
        yield
    finally:
        log.removeHandler(handler)
        log.propagate = propagate


# Hydra's flags after which there is no job to check: help, shell completion, another config.
_NO_JOB_FLAGS = (
    "help",
    "hydra_help",
    "version",
    "shell_completion",
    "info",
    "config_path",
    "config_name",
    "config_dir",
    "experimental_rerun",
)
# numeric defaults whose key also takes a word (Lightning's trainer.devices=auto)
_WORDS_ALLOWED = ("trainer.devices", "trainer.num_nodes")


def check_command_line(
    config_name: str, args: Sequence[str], check: Callable[[Any], None] | None = None
) -> None:
    """Compose ``conf/<config_name>.yaml`` with the overrides in ``args`` as Hydra will, for
    each job of a ``-m`` sweep (every value of every swept key is tried at least once), and
    refuse what cannot work: an unknown key or group option, a malformed override, a word where
    the default is a number or a boolean, a device that is not here (:func:`check_devices`),
    and whatever ``check(cfg)`` refuses. ``--cfg``/``--resolve`` only compose.

    Raises:
        ConfigError: one line naming the key as typed and the fix.
    """
    from hydra import compose, initialize_config_dir
    from hydra._internal.utils import get_args_parser
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException, OverrideParseException
    from omegaconf.errors import OmegaConfBaseException

    parser = get_args_parser()

    def refuse(message: str) -> None:
        raise ValueError(message)

    parser.error = refuse  # a malformed flag is Hydra's to report, with its usage text
    try:
        flags, _ = parser.parse_known_args(list(args))
    except ValueError:
        return
    if any(getattr(flags, name, None) for name in _NO_JOB_FLAGS):
        return
    try:
        parsed = OverridesParser.create().parse_overrides(flags.overrides)
    except OverrideParseException as e:
        reason = _parse_reason(e.message)
        raise ConfigError(
            f"{e.override}: not a valid override ({reason}); write key=value, with quotes "
            "around a value holding spaces or brackets: key='a b'"
        ) from None
    multirun = flags.multirun or any(o.input_line == "hydra.mode=MULTIRUN" for o in parsed)
    jobs = _jobs(parsed) if multirun else [[o.input_line for o in parsed]]
    if jobs is None:  # an interval or glob sweep: its values are the sweeper's to draw
        return
    root = Path(config_dir())
    # the config without the user's value changes, by the job's other overrides
    defaults: dict[tuple[str, ...], Any] = {}
    with initialize_config_dir(config_dir=str(root), version_base="1.3"):
        for job in jobs:
            overrides = OverridesParser.create().parse_overrides(job)
            try:
                cfg = compose(config_name, overrides=job)
            except (HydraException, OmegaConfBaseException) as e:
                raise ConfigError(_explain(e, overrides, config_name, root)) from None
            if flags.cfg or flags.resolve:
                continue
            if check is not None:  # first: the command's rules say more than a type
                try:
                    check(cfg)
                except ConfigError:
                    raise
                except Exception:  # not a config mistake here; the job's own check will say
                    pass
            # the config without the user's key=value changes: what each key's default is
            values = [o for o in overrides if _is_value_change(o, root)]
            if values:
                kept = tuple(o.input_line for o in overrides if o not in values)
                if kept not in defaults:  # a sweep's jobs mostly share their group choices
                    defaults[kept] = compose(config_name, overrides=list(kept))
                _check_types(cfg, defaults[kept], values)
            typed = {o.key_or_group: o.input_line for o in overrides}
            check_devices(cfg, typed)


def _jobs(overrides) -> list[list[str]] | None:
    """The command lines of a ``-m`` sweep's jobs, as few as try every value at least once:
    job i takes value i (cycling) of every swept key. None for sweeps that are not lists."""
    from hydra.errors import HydraException

    swept: dict[int, list[str]] = {}
    for i, o in enumerate(overrides):
        if o.is_sweep_override():
            try:
                swept[i] = list(o.sweep_string_iterator())
            except HydraException:
                return None
    n = max((len(v) for v in swept.values()), default=1)
    return [
        [
            f"{o.get_key_element()}={swept[i][j % len(swept[i])]}" if i in swept else o.input_line
            for i, o in enumerate(overrides)
        ]
        for j in range(n)
    ]


def _is_group(key: str, root: Path) -> bool:
    """Whether an override's key names a config group (Hydra's own groups have a slash)."""
    return "/" in key or (root / key).is_dir()


def _is_value_change(override, root: Path) -> bool:
    """A plain ``key=value`` on a key the config already has (not a group, not +, ~ or hydra.)."""
    key = override.key_or_group
    return not (
        override.is_add()
        or override.is_force_add()
        or override.is_delete()
        or key.startswith("hydra.")
        or _is_group(key, root)
    )


def _parse_reason(message: str) -> str:
    """The useful line of Hydra's override-grammar error."""
    for line in message.splitlines():
        line = line.strip()
        if line and not line.startswith(("See https", "Error parsing", "^")):
            return " ".join(line.split())
    return "see https://hydra.cc/docs/advanced/override_grammar/basic/"


def _group_options(root: Path, group: str) -> list[str]:
    return sorted(p.stem for p in (root / group).glob("*.yaml"))


def _explain(error: Exception, overrides, config_name: str, root: Path) -> str:
    """Hydra's composition error as one line naming the override as typed and the fix."""
    from hydra.errors import MissingConfigException

    typed = {o.key_or_group: o.input_line for o in overrides}
    text = str(error)
    if isinstance(error, MissingConfigException) and error.missing_cfg_file:
        group, _, option = str(error.missing_cfg_file).rpartition("/")
        options = list(error.options or []) or _group_options(root, group)
        said = typed.get(group, f"{group}={option}")
        close = difflib.get_close_matches(option, options, n=1)
        hint = f"did you mean {group}={close[0]}? " if close else ""
        return f"{said}: no {group} option '{option}'; {hint}choose one of: {', '.join(options)}"
    match = re.match(r"Could not override '([^']+)'", text)
    if match and "No match in the defaults list" in text:
        key = match.group(1)
        said = typed.get(key, key)
        return f"{said}: {config_name} does not use the {key} group; to add it anyway, use +{said}"
    if match:
        key = match.group(1)
        groups = [o.input_line for o in overrides if not _is_value_change(o, root)]
        return _unknown_key(typed.get(key, key), key, error.__cause__, config_name, groups, root)
    match = re.match(r"Ambiguous value for argument '([^']+)'", text)
    if match:
        said = match.group(1)
        key, _, value = said.partition("=")
        return (
            f"{said}: a value with commas is a sweep (add -m to the command), a list "
            f"({key}=[{value}]) or, quoted, a string ({key}='{value}')"
        )
    match = re.match(r"Multiple values for (\S+)\.", text)
    if match:  # +group=option on a group the defaults list already has
        said = typed.get(match.group(1), match.group(1))
        return f"{said}: {match.group(1)} is already in the defaults; drop the +: {said[1:]}"
    cause = error.__cause__
    detail = f" ({' '.join(str(cause).split())})" if cause is not None else ""
    head = " ".join(text.split("\nConfig search path")[0].split()) + detail
    said = next((o.input_line for o in overrides if f"'{o.key_or_group}'" in head), None)
    return f"{said}: {head}" if said else head


def _unknown_key(
    said: str, key: str, cause, config_name: str, groups: list[str], root: Path
) -> str:
    """``model.foo=1``: the key is not in the config; close matches, or how to add it."""
    from hydra import compose
    from omegaconf import OmegaConf

    missing = getattr(cause, "full_key", None) or key
    parent, _, leaf = str(missing).rpartition(".")
    defaults = None
    for attempt in (groups, []):  # the keys there are with the user's group choices
        try:
            defaults = compose(config_name, overrides=attempt)
            break
        except Exception:
            continue
    if defaults is not None and parent and OmegaConf.select(defaults, parent) is None:
        if _is_group(parent, root):
            options = [o for o in _group_options(root, parent) if o != "none"]
            return (
                f"{said}: {parent} is off (null) here, so it has no key '{leaf}'; choose one "
                f"first: {parent}=<{'|'.join(options)}>"
            )
    plain = OmegaConf.to_container(defaults, resolve=False) if defaults is not None else {}
    paths = [k for k, _ in _leaves(plain) if "._" not in f".{k}"]  # no _target_ and the like
    close = difflib.get_close_matches(key, paths, n=3, cutoff=0.75)
    close += [p for p in paths if p.rpartition(".")[2] == key.rpartition(".")[2] and p != key]
    close = list(dict.fromkeys(close))[:3]
    if close:
        hint = f"did you mean {' or '.join(close)}? "
    else:  # no near miss: the keys there are at that level
        node = OmegaConf.select(defaults, parent) if defaults is not None and parent else None
        keys = [str(k) for k in getattr(node, "keys", list)() if not str(k).startswith("_")]
        shown = ", ".join(keys[:12]) + (", ..." if len(keys) > 12 else "")
        hint = f"{parent} has {shown}; " if keys else ""
    return f"{said}: unknown key {key}; {hint}to add a new key, use +{said}"


_ABSENT = object()


def _get(cfg, key: str) -> Any:
    """``cfg``'s value at ``key``; ``_ABSENT`` if there is no such key, None where it cannot be
    known before Hydra runs (``???``, ``${hydra:...}``)."""
    from omegaconf import OmegaConf

    return OmegaConf.select(
        cfg, key, default=_ABSENT, throw_on_missing=False, throw_on_resolution_failure=False
    )


def _check_types(cfg, defaults, overrides) -> None:
    """A typed value of another kind than the default: a word for a number or a boolean, a
    value for a block of options. (Ranges are the command's ``check``; null always passes.)"""
    from omegaconf import DictConfig, OmegaConf
    from omegaconf.errors import InterpolationKeyError

    for o in overrides:
        key = o.key_or_group
        if "${" in o.input_line:  # an interpolation: its target has its own type, if it exists
            try:
                OmegaConf.select(cfg, key)
            except InterpolationKeyError as e:
                raise ConfigError(
                    f"{o.input_line}: {' '.join(str(e).splitlines()[0].split())}; "
                    "${...} must name a key of this config, e.g. ${seed}"
                ) from None
            except Exception:  # a resolver only Hydra's run can answer (${hydra:...})
                pass
            continue
        default, value = _get(defaults, key), _get(cfg, key)
        if default is _ABSENT or default is None or value is None or value is _ABSENT:
            continue
        if isinstance(default, DictConfig):
            if not isinstance(value, DictConfig):
                options = [k for k in default.keys() if not str(k).startswith("_")]
                example = f"{key}.{options[0]}={o.input_line.partition('=')[2]}" if options else ""
                raise ConfigError(
                    f"{o.input_line}: {key} is a block of options ({', '.join(map(str, options))}),"
                    f" not a value; set one of them" + (f", e.g. {example}" if example else "")
                )
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                raise ConfigError(f"{key}={value!r}: expected true or false")
        elif isinstance(default, int | float) and isinstance(value, str):
            if key not in _WORDS_ALLOWED:
                raise ConfigError(f"{key}={value!r}: expected a number, e.g. {key}={default}")


def check_device(value: Any, key: str = "device") -> None:
    """``value`` names a device this machine has: ``cpu``, ``cuda``, ``cuda:N`` below the GPU
    count, or ``mps`` where available. torch is imported only for a device other than the CPU.

    Raises:
        ConfigError: e.g. ``device=cuda: no CUDA GPU here ...; run on the CPU with device=cpu``.
    """
    text = str(value).strip()
    match = re.fullmatch(r"(cpu|cuda|mps)(?::(\d+))?", text)
    if match is None:
        raise ConfigError(
            f"{key}={text}: not a device; use {key}=cpu, {key}=cuda or {key}=cuda:N "
            f"(N-th GPU), or {key}=mps on Apple silicon"
        )
    kind, index = match.group(1), match.group(2)
    if kind == "cpu":
        return
    import warnings

    import torch

    if kind == "mps":
        if not torch.backends.mps.is_available():
            raise ConfigError(f"{key}={text}: no Apple MPS device here; use {key}=cpu")
        return
    with warnings.catch_warnings():  # torch warns about a missing driver: the line says it
        warnings.simplefilter("ignore")
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count == 0:
        why = "this torch has no CUDA support" if torch.version.cuda is None else "no GPU found"
        raise ConfigError(f"{key}={text}: no CUDA GPU here ({why}); run on the CPU with {key}=cpu")
    if index is not None and int(index) >= count:
        raise ConfigError(
            f"{key}={text}: this machine has {count} CUDA GPU{'s' if count > 1 else ''} "
            f"(cuda:0 to cuda:{count - 1}); use {key}=cuda:0 or {key}=cpu"
        )


def check_devices(cfg, typed: Mapping[str, str] | None = None) -> None:
    """Every ``device`` key of ``cfg`` (``device``, ``detector.device``, ...) and Lightning's
    ``trainer.accelerator``/``trainer.devices`` name hardware this machine has.

    Args:
        cfg: a composed config.
        typed: config key -> the override as the user typed it (``trainer`` -> ``trainer=gpu``),
            so the message names what they wrote.

    Raises:
        ConfigError: see :func:`check_device`.
    """
    from omegaconf import OmegaConf

    typed = typed or {}
    plain = OmegaConf.to_container(cfg, resolve=False)
    for path, value in _leaves(plain):
        if (path == "device" or path.endswith(".device")) and isinstance(value, str):
            if "${" not in value:  # an interpolation's target is checked where it is
                check_device(value, path)
    trainer = plain.get("trainer") if isinstance(plain, dict) else None
    if not isinstance(trainer, dict) or str(trainer.get("accelerator")) not in ("gpu", "cuda"):
        return
    accelerator = str(trainer["accelerator"])
    said = typed.get(
        "trainer", typed.get("trainer.accelerator", f"trainer.accelerator={accelerator}")
    )
    try:
        check_device("cuda", "trainer.accelerator")
    except ConfigError:
        raise ConfigError(
            f"{said}: no CUDA GPU here (trainer.accelerator={accelerator}); train on the CPU "
            "with trainer=default (or trainer=ddp_cpu for two CPU processes)"
        ) from None
    devices = trainer.get("devices")
    if isinstance(devices, int) and not isinstance(devices, bool) and devices > 1:
        import torch

        if devices > torch.cuda.device_count():
            count = torch.cuda.device_count()
            raise ConfigError(
                f"trainer.devices={devices}: this machine has {count} CUDA GPU"
                f"{'s' if count > 1 else ''}; use trainer.devices={count} (or -1: all)"
            )


@dataclass(frozen=True)
class Rule:
    """What a config value may be, for :func:`check_values`: a number within bounds, or one of
    ``choices``."""

    low: float | None = None  # smallest allowed number (None = no lower bound)
    high: float | None = None  # largest allowed number (None = no upper bound)
    low_open: bool = False  # low itself is not allowed (> instead of ≥)
    high_open: bool = False  # high itself is not allowed (< instead of ≤)
    whole: bool = False  # an int only (2.5 and 2.0 are refused)
    null: bool = False  # null (None) is allowed
    each: bool = False  # a non-empty list is allowed, every element obeying the rule
    also: tuple[float, ...] = ()  # numbers allowed outside the bounds, e.g. -1 = no limit
    choices: tuple[str, ...] = ()  # the allowed words; bounds are then unused
    eg: Any = None  # the example the message suggests (None = none)
    expect: str = ""  # what the message says is expected, instead of the generated words

    def describe(self) -> str:
        """What is expected, in words: 'a whole number ≥ 1', '-1, null or a number > 0'."""
        if self.expect:
            return self.expect
        if self.choices:
            return "one of " + ", ".join(self.choices)
        kind = "a whole number" if self.whole else "a number"
        if self.low is not None and self.high is not None:
            left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
            kind += f" in {left}{self.low:g}, {self.high:g}{right}"
        elif self.low is not None:
            kind += f" {'>' if self.low_open else '≥'} {self.low:g}"
        elif self.high is not None:
            kind += f" {'<' if self.high_open else '≤'} {self.high:g}"
        extras = [f"{a:g}" for a in self.also] + (["null"] if self.null else [])
        return f"{', '.join(extras)} or {kind}" if extras else kind

    def allows(self, value: Any) -> bool:
        """Whether ``value`` (a plain Python value of the config) obeys the rule."""
        if value is None:
            return self.null
        if self.each and isinstance(value, list | tuple):
            return bool(value) and all(self.allows(v) for v in value)
        if self.choices:
            return value in self.choices
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if value in self.also:
            return True
        if self.whole and not isinstance(value, int):
            return False
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        return not (
            self.high is not None and (value > self.high or (self.high_open and value == self.high))
        )


def check_values(cfg, rules: Mapping[str, Rule]) -> None:
    """Every value of ``cfg`` whose dotted key matches a rule's pattern (fnmatch: ``*`` also
    spans dots, ``loss.lambda_*``) obeys the first such rule. Interpolations are left to the
    key they point at, which is checked at its own place.

    Raises:
        ConfigError: ``data.batch_size=-3: expected a whole number ≥ 1, e.g. data.batch_size=8``.
    """
    from omegaconf import OmegaConf

    for key, value in _leaves(OmegaConf.to_container(cfg, resolve=False)):
        rule = next((r for p, r in rules.items() if fnmatch.fnmatchcase(key, p)), None)
        if rule is None or (isinstance(value, str) and "${" in value) or rule.allows(value):
            continue
        example = f", e.g. {key}={rule.eg}" if rule.eg is not None else ""
        raise ConfigError(f"{key}={_shown(value)}: expected {rule.describe()}{example}")


def _leaves(node: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted key, value) of every non-dict value of a plain config; lists are values."""
    if isinstance(node, dict):
        for k, v in node.items():
            if prefix or k != "hydra":
                yield from _leaves(v, f"{prefix}.{k}" if prefix else str(k))
    elif prefix:
        yield prefix, node


def _shown(value: Any) -> str:
    """A value as the user would type it back (strings quoted, so 'abc' reads as a word)."""
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ",".join(_shown(v) for v in value) + "]"
    if isinstance(value, bool):
        return str(value).lower()
    return "null" if value is None else str(value)


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
            options = _group_options(root, group)
            summaries = {o: summary_line(root / group / f"{o}.yaml") for o in options}
            if any(summaries.values()):  # one option a line: what it is, how long it takes
                default = "none" if choice in ("null", "") else choice
                out.append(f"  {group} (default: {default}):")
                width = max(map(len, options)) + 2
                out += [f"    {o:<{width}}{summaries[o] or ''}".rstrip() for o in options]
                continue
            shown = ", ".join(f"[{o}]" if o == choice else o for o in options)
            out.append(f"  {group}: {shown}" + ("" if choice not in ("null", "") else " (none)"))
    out += [
        "",
        "??? marks a required option. A group's own keys are options too (<group>.<key>=value);",
        "`--cfg job` prints the composed config, `--hydra-help` Hydra's own help, `-m` a sweep.",
    ]
    return "\n".join(out).rstrip() + "\n"


# An option file's summary: its first comment line after ``# @package``, in the fixed form
# ``# <what it is> (<time> on a 2-core CPU)`` (conf/experiment/*.yaml).
_SUMMARY = re.compile(r"# (.+ \([^()]*on a 2-core CPU[^()]*\))")


def summary_line(path: Path) -> str | None:
    """The one-line description and CPU time of a config group option, or None."""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# @package"):
            continue
        match = _SUMMARY.fullmatch(line.rstrip())
        return match.group(1) if match else None
    return None
