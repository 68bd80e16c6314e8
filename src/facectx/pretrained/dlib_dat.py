"""Read dlib's binary serialisation (``.dat`` DNN files) with numpy alone, no dlib.

dlib writes a network as nested objects whose layout is fixed by the network's C++ type, not
described in the file, so a reader has to know that type. :func:`read_network` takes the type
as a list of layer kinds (output to input, as the C++ type spells it) and walks the stream in
the order dlib's ``serialize`` functions write it (``dlib/serialize.h``, ``dlib/dnn/core.h``,
``dlib/dnn/layers.h``, ``dlib/cuda/tensor.h``, dlib 19-20):

* integers: one control byte (bit 7: sign, low 4 bits: byte count n, 1..8) then n little-endian
  magnitude bytes; 0 is ``01 00``. Unsigned integers reject the sign bit.
* float/double: two integers, a signed 64-bit mantissa then a 16-bit exponent, value
  ``mantissa * 2**exponent``; exponents 32000/32001/32002 mean +inf/-inf/NaN. (dlib's prose says
  exponent first; the code writes the mantissa first.)
* bool: the ASCII byte ``'1'`` or ``'0'``. string: an unsigned length, then the bytes.
* tensor: version int (2), num_samples, k, nr, nc as integers, then the values as raw
  little-endian float32 (not the float encoding above). alias_tensor: version 1 and 4 integers.
* ``add_loss_layer``: version, loss details, subnetwork. ``add_layer``: version, *subnetwork
  first*, then the layer's details and bookkeeping (3 bools, 3 or 2 tensors, ...). Tag and skip
  layers: version, subnetwork. So the bytes hold every wrapper's version from the output down,
  then the input layer, then the layers' details from the input up.
"""

from __future__ import annotations

import bz2
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

_SPECIAL_EXPONENTS = {32000: float("inf"), 32001: float("-inf"), 32002: float("nan")}


class DlibFormatError(ValueError):
    """The file is not (or no longer, when truncated) what the reader was told to expect."""


class DlibStream:
    """Cursor over the bytes of one serialised dlib object; errors name the file and offset.

    Args:
        data: the whole file's bytes.
        name: how to name the file in error messages (usually its path).
        expected: one line saying what the file should be, appended to every error.
    """

    def __init__(self, data: bytes, name: str, expected: str = "") -> None:
        self.data = memoryview(data)
        self.name = name
        self.expected = expected
        self.pos = 0
        self.context: list[str] = []

    def fail(self, message: str) -> DlibFormatError:
        where = " > ".join(self.context)
        hint = f" Expected {self.expected}." if self.expected else ""
        return DlibFormatError(
            f"{self.name}: {message} (at byte {self.pos} of {len(self.data)}"
            f"{', in ' + where if where else ''}).{hint}"
        )

    def take(self, n: int, what: str) -> memoryview:
        if n < 0 or self.pos + n > len(self.data):
            raise self.fail(
                f"file truncated: {what} needs {n} bytes but only {len(self.data) - self.pos} remain"
            )
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def _int(self, what: str, signed: bool, max_bytes: int) -> int:
        ctrl = self.take(1, what)[0]
        negative = bool(ctrl & 0x80)
        n = ctrl & 0x0F
        if (negative and not signed) or ctrl & 0x70 or not 1 <= n <= max_bytes:
            raise self.fail(f"bad integer control byte 0x{ctrl:02x} for {what}")
        value = int.from_bytes(self.take(n, what), "little")
        return -value if negative else value

    def int(self, what: str = "int") -> int:
        return self._int(what, signed=True, max_bytes=8)

    def uint(self, what: str = "unsigned int") -> int:
        return self._int(what, signed=False, max_bytes=8)

    def float(self, what: str = "float") -> float:
        if self.pos < len(self.data) and self.data[self.pos] & 0x70:
            raise self.fail(f"{what} uses dlib's old ASCII float format, which is not supported")
        mantissa = self._int(what + " mantissa", signed=True, max_bytes=8)
        exponent = self._int(what + " exponent", signed=True, max_bytes=2)
        if exponent in _SPECIAL_EXPONENTS:
            return _SPECIAL_EXPONENTS[exponent]
        return float(np.ldexp(float(mantissa), exponent))

    def bool(self, what: str = "bool") -> bool:
        ch = bytes(self.take(1, what))
        if ch not in (b"0", b"1"):
            raise self.fail(f"bad bool byte {ch!r} for {what}")
        return ch == b"1"

    def string(self, what: str = "string") -> str:
        n = self.uint(what + " length")
        if n > 4096:
            raise self.fail(f"implausible {what} length {n}")
        return bytes(self.take(n, what)).decode("latin-1")

    def tag(self, allowed: tuple[str, ...], what: str) -> str:
        """Read a version string and check it is one of ``allowed``."""
        start = self.pos
        try:
            s = self.string(what + " version string")
        except DlibFormatError:
            self.pos = start
            raise self.fail(f"expected {what} (version {' or '.join(allowed)})") from None
        if s not in allowed:
            self.pos = start
            raise self.fail(f"expected {what} (version {' or '.join(allowed)}), found {s!r}")
        return s

    def version(self, allowed: tuple[int, ...], what: str) -> int:
        v = self.int(what + " version")
        if v not in allowed:
            raise self.fail(f"unexpected {what} version {v}, expected one of {allowed}")
        return v

    def tensor(self, what: str = "tensor") -> np.ndarray:
        """(num_samples, k, nr, nc) float32 array."""
        self.version((2,), what)
        shape = tuple(self.int(f"{what} dim") for _ in range(4))
        if min(shape) < 0:
            raise self.fail(f"negative {what} shape {shape}")
        count = int(np.prod(shape, dtype=np.int64))
        raw = self.take(4 * count, f"{what} of shape {shape}")
        return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(shape)

    def alias_tensor(self, what: str = "alias_tensor") -> tuple[int, int, int, int]:
        self.version((1,), what)
        return tuple(self.int(f"{what} dim") for _ in range(4))  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------------
# layer details, one reader per dlib layer class; each returns a plain dict


def _multipliers(s: DlibStream) -> None:
    for what in ("learning_rate_mult", "weight_decay_mult", "bias_lr_mult", "bias_wd_mult"):
        s.float(what)


def _read_con(s: DlibStream) -> dict[str, Any]:
    version = s.tag(("con_4", "con_5", "con_6"), "con_")
    params = s.tensor("con_ params").reshape(-1)
    out: dict[str, Any] = {"num_filters": s.int("num_filters")}
    for key in ("nr", "nc", "stride_y", "stride_x", "padding_y", "padding_x"):
        out[key] = s.int(key)
    filters = s.alias_tensor("filters")
    s.alias_tensor("biases")
    _multipliers(s)
    use_bias = s.bool("use_bias") if version in ("con_5", "con_6") else True
    if version == "con_6" and s.bool("use_relu"):
        raise s.fail("con_ with a fused relu is not supported")
    n_w = int(np.prod(filters))
    n_b = out["num_filters"] if use_bias else 0
    if filters[0] != out["num_filters"] or params.size != n_w + n_b:
        raise s.fail(f"con_ params hold {params.size} values, filters {filters} + bias {n_b}")
    out["weight"] = params[:n_w].reshape(filters)
    out["bias"] = params[n_w:] if use_bias else np.zeros(out["num_filters"], np.float32)
    return out


def _read_affine(s: DlibStream) -> dict[str, Any]:
    version = s.tag(("affine_", "affine_2", "bn_con2"), "affine_ (or bn_con2)")
    params = s.tensor("affine params").reshape(-1)
    gamma = s.alias_tensor("gamma")
    s.alias_tensor("beta")
    n = int(np.prod(gamma))
    if params.size != 2 * n:
        raise s.fail(f"affine params hold {params.size} values, expected 2 x {n}")
    scale, shift = params[:n], params[n:]
    if version == "bn_con2":  # a batch-norm layer saved by a training net: fold it like dlib
        for what in ("means", "invstds"):
            s.tensor(what)
        mean = s.tensor("running_means").reshape(-1)
        var = s.tensor("running_variances").reshape(-1)
        s.uint("num_updates")
        s.uint("running_stats_window_size")
        _multipliers(s)
        eps = np.float32(s.float("eps"))
        scale = (scale / np.sqrt(var + eps)).astype(np.float32)
        shift = (shift - scale * mean).astype(np.float32)
    else:
        if s.int("mode") != 0:  # CONV_MODE = 0: one scale/shift per channel (FC_MODE = 1)
            raise s.fail("only per-channel (CONV_MODE) affine layers are supported")
        if version == "affine_2" and s.bool("disabled"):
            raise s.fail("disabled affine layers are not supported")
    return {"num_channels": gamma[1], "weight": scale, "bias": shift}


def _read_relu(s: DlibStream) -> dict[str, Any]:
    if s.tag(("relu_", "relu_2"), "relu_") == "relu_2" and s.bool("disabled"):
        raise s.fail("disabled relu layers are not supported")
    return {}


def _read_pool(kind: str):
    def read(s: DlibStream) -> dict[str, Any]:
        s.tag((f"{kind}_2",), f"{kind}_")
        keys = ("nr", "nc", "stride_y", "stride_x", "padding_y", "padding_x")
        return {key: s.int(key) for key in keys}

    return read


def _read_add_prev(s: DlibStream) -> dict[str, Any]:
    s.tag(("add_prev_",), "add_prev_")
    return {}


def _read_fc(s: DlibStream) -> dict[str, Any]:
    version = s.tag(("fc_2", "fc_3"), "fc_")
    num_outputs, num_inputs = s.uint("num_outputs"), s.uint("num_inputs")
    params = s.tensor("fc params").reshape(-1)
    weights = s.alias_tensor("weights")
    s.alias_tensor("biases")
    has_bias = s.int("bias_mode") == 0  # FC_HAS_BIAS = 0, FC_NO_BIAS = 1
    _multipliers(s)
    if version == "fc_3":
        has_bias = s.bool("use_bias") and has_bias
    if weights[:2] != (num_inputs, num_outputs):
        raise s.fail(
            f"fc weights {weights} do not match {num_inputs} inputs, {num_outputs} outputs"
        )
    n_w = num_inputs * num_outputs
    if params.size != n_w + (num_outputs if has_bias else 0):
        raise s.fail(f"fc params hold {params.size} values for {num_inputs}x{num_outputs}")
    # dlib computes x @ W with W stored (inputs, outputs), row-major
    return {
        "num_outputs": num_outputs,
        "weight": params[:n_w].reshape(num_inputs, num_outputs).T.copy(),
        "bias": params[n_w:] if has_bias else None,
    }


def _read_input_rgb_sized(s: DlibStream) -> dict[str, Any]:
    s.tag(("input_rgb_image_sized",), "input_rgb_image_sized")
    mean = [s.float(f"avg_{c}") for c in ("red", "green", "blue")]
    return {"mean_rgb": np.array(mean, np.float32), "nr": s.uint("nr"), "nc": s.uint("nc")}


def _read_loss_metric(s: DlibStream) -> dict[str, Any]:
    if s.tag(("loss_metric_", "loss_metric_2"), "loss_metric_") == "loss_metric_":
        return {"margin": 0.1, "distance_threshold": 0.75}
    return {"margin": s.float("margin"), "distance_threshold": s.float("dist_thresh")}


LAYER_READERS = {
    "con": _read_con,
    "affine": _read_affine,
    "relu": _read_relu,
    "max_pool": _read_pool("max_pool"),
    "avg_pool": _read_pool("avg_pool"),
    "add_prev": _read_add_prev,
    "fc": _read_fc,
}
INPUT_READERS = {"input_rgb_image_sized": _read_input_rgb_sized}
LOSS_READERS = {"loss_metric": _read_loss_metric}
WRAPPERS = ("tag", "skip")  # no details of their own: just a version and the subnetwork


@dataclass
class DlibNetwork:
    """What :func:`read_network` found: details per layer, listed from the input up."""

    loss: dict[str, Any]
    input: dict[str, Any]
    layers: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


def _bookkeeping(s: DlibStream, tensors: int, expansion: bool) -> None:
    """The training state every add_layer stores after its details; checked, then dropped."""
    for what in ("setup_called", "gradient_stale", "output_disabled"):
        s.bool(what)
    for i in range(tensors):
        s.tensor(f"cached tensor {i}")
    if expansion:
        s.uint("sample_expansion_factor")


def read_network(path: str | Path, kinds: list[str], expected: str) -> DlibNetwork:
    """Parse a serialised ``add_loss_layer`` network whose type is ``kinds``.

    Args:
        path: the ``.dat`` file; a ``.bz2`` compressed one (as dlib.net ships them) also works.
        kinds: layer kinds from the loss down to the input, e.g. ``["loss_metric", "fc", ...,
            "con", "input_rgb_image_sized"]``; ``"tag"``/``"skip"`` for tag and skip wrappers.
        expected: one line describing the right file, for error messages.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file. Expected {expected}.")
    data = path.read_bytes()
    if data[:3] == b"BZh":
        try:
            data = bz2.decompress(data)
        except (OSError, EOFError) as err:
            raise DlibFormatError(
                f"{path}: broken bz2 stream ({err}). Expected {expected}."
            ) from err
    s = DlibStream(data, str(path), expected)
    loss_kind, *body, bottom, input_kind = kinds
    if loss_kind not in LOSS_READERS or input_kind not in INPUT_READERS:
        raise ValueError(f"kinds must start with a loss and end with an input layer: {kinds}")
    if bottom not in LAYER_READERS:
        raise ValueError(f"the layer on top of the input must be a computational layer: {bottom}")

    s.context.append("loss layer")
    s.version((1,), "add_loss_layer")
    loss = LOSS_READERS[loss_kind](s)
    s.context.pop()

    # versions of every wrapper, from the output down
    pending: list[tuple[int, str, int]] = []
    for i, kind in enumerate(body):
        s.context[:] = [f"layer {i + 1} ({kind}) header"]
        if kind in WRAPPERS:
            s.version((1,), f"add_{kind}_layer")
        elif kind in LAYER_READERS:
            pending.append((i + 1, kind, s.version((1, 2), "add_layer")))
        else:
            raise ValueError(f"unknown layer kind {kind!r}")

    s.context[:] = [f"layer {len(body) + 1} ({bottom}) on the input"]
    v = s.version((2, 3), "add_layer")
    net = DlibNetwork(loss=loss, input=INPUT_READERS[input_kind](s))
    net.layers.append((bottom, LAYER_READERS[bottom](s)))
    _bookkeeping(s, tensors=3, expansion=v >= 3)

    for index, kind, v in reversed(pending):
        s.context[:] = [f"layer {index} ({kind})"]
        net.layers.append((kind, LAYER_READERS[kind](s)))
        _bookkeeping(s, tensors=3 if v >= 2 else 2, expansion=False)
    s.context.clear()
    if s.pos != len(s.data):
        raise s.fail(f"{len(s.data) - s.pos} unexpected bytes after the network")
    return net
