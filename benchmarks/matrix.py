"""The benchmark matrix: configurations, presets, and the cases built from them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

import impls
from impls import TRAFFIC_PASSES, ConvGeometry, resolve_geometry

from . import layers
from .duet import get_backend
from .runfile import BATCH, GPU_PASSES, PASSES, PHASES, RESNET, RESNET50, SWEEP


@dataclass(frozen=True)
class Conv:
    """One convolution configuration: NHWC input, square image and kernel, SAME padding unless
    a layer of a real network gives its own."""

    #: short name of the configuration ("default" for the size sweep)
    label: str
    n: int
    size: int
    c_in: int
    c_out: int
    k: int
    stride: int = 1
    #: "SAME", "VALID" or the zeros added on every side
    padding: str | int = "SAME"
    dtype: str = "float32"
    #: the real network this layer belongs to ("" for a synthetic configuration)
    network: str = ""
    #: how many of the network's layers have this shape: its weight in the whole network
    weight: int = 1

    @property
    def x_shape(self) -> tuple[int, int, int, int]:
        return (self.n, self.size, self.size, self.c_in)

    @property
    def w_shape(self) -> tuple[int, int, int, int]:
        return (self.k, self.k, self.c_in, self.c_out)

    def geometry(self) -> ConvGeometry:
        return resolve_geometry(
            self.x_shape, self.w_shape, stride=self.stride, padding=self.padding
        )

    @property
    def pixels(self) -> int:
        """Output pixels over the batch, N * OH * OW: what per-pixel loops pay for."""
        geom = self.geometry()
        return geom.n * geom.out_h * geom.out_w

    @property
    def itemsize(self) -> int:
        return np.dtype(self.dtype).itemsize

    @property
    def id(self) -> str:
        """The configuration's name in benchmark ids: its label, what tells its rows of one
        label apart (a ResNet-50 layer's kernel, channels and stride; the batch of the batch
        sweep), and its image size."""
        if self.label == RESNET50:
            layer = f"{self.k}x{self.k}-{self.c_in}-{self.c_out}-s{self.stride}"
            return f"{self.label}-{layer}-{self.size}px"
        if self.label == BATCH:
            return f"{self.label}-n{self.n}-{self.size}px"
        return f"{self.label}-{self.size}px"


def sweep_conv(size: int) -> Conv:
    """The default configuration at one image size: batch 8, 32 -> 32 channels, 3x3."""
    return Conv(SWEEP, n=8, size=size, c_in=32, c_out=32, k=3)


#: the one-factor-at-a-time rows, each at the preset's variant size
VARIANTS: dict[str, dict[str, int]] = {
    "stride2": {"stride": 2},
    "k1": {"k": 1},
    "k5": {"k": 5},
    "c64": {"c_in": 64, "c_out": 64},
}
RESNET_CONV = Conv(RESNET, n=16, size=56, c_in=64, c_out=64, k=3)

#: the batch of the ResNet-50 layers, where the GPU goals are judged
RESNET50_BATCH = 128
#: the batch sizes of the batch sweep, at ResNet-50's stage-2 3x3 layer
BATCH_SIZES = (1, 2, 4, 8, 16, 32, 64, 128)


def resnet50_convs(n: int = RESNET50_BATCH) -> list[Conv]:
    """Every distinct 3x3 and 1x1 layer of ResNet-50 (:data:`layers.RESNET50` less the 7x7
    stem) at batch ``n``, float32."""
    return [
        Conv(
            RESNET50,
            n=n,
            size=layer.size,
            c_in=layer.c_in,
            c_out=layer.c_out,
            k=layer.k,
            stride=layer.stride,
            padding=layer.padding,
        )
        for layer in layers.RESNET50
        if layer.k in (1, 3)
    ]


def batch_convs(batches: Iterable[int] = BATCH_SIZES) -> list[Conv]:
    """ResNet-50's stage-2 3x3 layer (56 px, 64 -> 64) at each batch size."""
    return [Conv(BATCH, n=n, size=56, c_in=64, c_out=64, k=3, padding=1) for n in batches]


@dataclass(frozen=True)
class Preset:
    """How much of the matrix to run and how long each benchmark may take."""

    name: str
    #: image sizes of the default sweep
    sizes: tuple[int, ...]
    #: image size of the one-factor rows; 0 leaves them out
    variant_size: int
    #: whether the resnet configuration is in the matrix
    resnet: bool
    #: image size of the default configuration whose GEMM is the machine's limit
    limit_size: int
    #: timed rounds per benchmark: at least, at most
    min_rounds: int
    max_rounds: int
    #: seconds of timed rounds aimed at per benchmark
    round_budget_s: float
    #: a case whose single call is estimated slower than this is skipped
    max_call_s: float
    #: once the benchmarks have taken this long, the remaining cases are skipped
    session_budget_s: float
    #: measure the machine's compute peaks on small products (a second less, a little low)
    quick_peaks: bool = False
    #: the devices whose backends this preset times; the others are left out, with why
    devices: tuple[str, ...] = ("cpu", "gpu")
    #: whether a GPU backend is also timed moving its inputs to the device and back
    transfer: bool = True
    #: configurations beyond the size sweep, the one-factor rows and the resnet layer
    extra: tuple[Conv, ...] = ()
    #: real networks whose distinct layers are in the matrix (benchmarks/networks.py)
    networks: tuple[str, ...] = ()
    #: the roles of the backends timed when --backends names none; () for every backend
    roles: tuple[str, ...] = ()
    #: whether each CPU step's true peak memory is measured after the timing (a child
    #: process per backend that runs every configuration twice)
    memory: bool = True
    #: whether each backend's error against the float64 reference is measured after the
    #: timing (the reference runs on the CPU: minutes a layer at the gpu preset's batch 128)
    accuracy: bool = True

    def convs(self, sizes: Iterable[int] | None = None) -> list[Conv]:
        """Every configuration of this preset, the sweep at ``sizes`` when given."""
        convs = [sweep_conv(s) for s in (sizes or self.sizes)]
        convs += self.extra
        if self.variant_size:
            base = sweep_conv(self.variant_size)
            convs += [
                Conv(**{**asdict(base), "label": label, **change})
                for label, change in VARIANTS.items()
            ]
        if self.resnet:
            convs.append(RESNET_CONV)
        from .networks import network_convs  # networks.py builds on Conv

        return convs + [conv for name in self.networks for conv in network_convs(name)]

    def default_backends(self) -> list[str] | None:
        """The backends this preset times when none are named: those of its roles; None for
        every backend."""
        if not self.roles:
            return None
        return [n for n in impls.backend_names() if get_backend(n).role in self.roles]

    def limit_convs(self) -> list[Conv]:
        """The configurations whose plain GEMM is timed as the machine's limit."""
        convs = [sweep_conv(self.limit_size)] if self.limit_size else []
        return [*convs, RESNET_CONV] if self.resnet else convs


PRESETS = {
    "smoke": Preset(
        "smoke",
        sizes=(16, 32),
        variant_size=0,
        resnet=False,
        limit_size=32,
        min_rounds=3,
        max_rounds=5,
        round_budget_s=0.1,
        max_call_s=0.5,
        session_budget_s=40,
        quick_peaks=True,
    ),
    "default": Preset(
        "default",
        sizes=(16, 24, 32, 64, 128, 224),
        variant_size=64,
        resnet=True,
        limit_size=128,
        min_rounds=5,
        max_rounds=25,
        round_budget_s=0.6,
        max_call_s=2.0,
        session_budget_s=600,
    ),
    "full": Preset(
        "full",
        sizes=(16, 24, 32, 48, 64, 96, 128, 160, 224),
        variant_size=128,
        resnet=True,
        limit_size=128,
        min_rounds=5,
        max_rounds=50,
        round_budget_s=3.0,
        max_call_s=30.0,
        session_budget_s=4 * 3600,
        networks=("resnet50", "vgg16"),
    ),
    "resnet50": Preset(
        "resnet50",
        sizes=(),
        variant_size=0,
        resnet=False,
        limit_size=56,
        min_rounds=3,
        max_rounds=7,
        round_budget_s=0.15,
        max_call_s=1.5,
        session_budget_s=420,
        quick_peaks=True,
        networks=("resnet50",),
        roles=("ours", "peer"),
        memory=False,
    ),
    # layers that fill a data-centre GPU, and where it stops being bound by the host: a few
    # minutes for numba_cuda and torch_cudnn on one H200, 5 at most, compilation not counted
    "gpu": Preset(
        "gpu",
        sizes=(),
        variant_size=0,
        resnet=False,
        limit_size=0,
        min_rounds=10,
        max_rounds=200,
        round_budget_s=0.2,
        max_call_s=5.0,
        session_budget_s=300,
        quick_peaks=True,
        devices=("gpu",),
        transfer=False,
        extra=(*resnet50_convs(), *batch_convs()),
        accuracy=False,
    ),
}


@dataclass(frozen=True)
class Case:
    """One benchmark: a backend timed on one pass of one configuration."""

    backend: str
    pass_: str
    conv: Conv
    #: the thread count of a thread-scaling case; 0 for the run's own count
    threads: int = 0

    @property
    def id(self) -> str:
        at = f"-{self.threads}t" if self.threads else ""
        return f"{self.backend}-{self.pass_}-{self.conv.id}{at}"

    def flops(self) -> int:
        geom = self.conv.geometry()
        return {
            "forward": geom.flops_forward,
            "backward": geom.flops_backward,
            "step": geom.flops_forward + geom.flops_backward,
        }.get(self.pass_, 0)

    def describe(self) -> dict[str, Any]:
        """The case as flat JSON-able fields: the report's row keys."""
        geom = self.conv.geometry()
        backend = get_backend(self.backend)
        return {
            "kind": "threads" if self.threads else "phase" if self.pass_ in PHASES else "conv",
            "backend": self.backend,
            "role": backend.role,
            "device": backend.device,
            "pass": self.pass_,
            "config": self.conv.label,
            "n": geom.n,
            "h": geom.h,
            "w": geom.w,
            "c_in": geom.c_in,
            "c_out": geom.c_out,
            "kh": geom.kh,
            "kw": geom.kw,
            "stride": geom.stride[0],
            "padding": self.conv.padding,
            "network": self.conv.network,
            "weight": self.conv.weight,
            "dilation": geom.dilation[0],
            "dtype": self.conv.dtype,
            "flops": self.flops(),
            "cols_bytes": geom.cols_bytes(self.conv.itemsize),
            # what the roofline's intensity divides by: the backend's own traffic model
            "traffic_bytes": backend.traffic_bytes(geom, self.pass_, self.conv.dtype)
            if self.pass_ in TRAFFIC_PASSES
            else None,
            "memory_estimate_bytes": backend.memory_estimate(geom, self.conv.dtype),
        }


@dataclass(frozen=True)
class BlasCase:
    """The plain float32 product of one configuration's im2col size: the machine's limit."""

    conv: Conv

    @property
    def id(self) -> str:
        return self.conv.id

    def describe(self) -> dict[str, Any]:
        geom = self.conv.geometry()
        rows, depth = geom.cols_shape
        return {
            "kind": "blas_limit",
            "config": self.conv.label,
            "h": geom.h,
            "m": rows,
            "k": depth,
            "n_cols": geom.c_out,
            "flops": geom.flops_forward,
        }


def result_row(
    case: Case | BlasCase, *, threads: int, status: str = "ok", reason: str = ""
) -> dict[str, Any]:
    """What the run's JSON keeps of a case, timed, skipped or failed alike: the fields of
    :data:`runfile.ROW_FIELDS`; ``threads`` is the run's count, which a thread-scaling case
    replaces with its own."""
    threads = getattr(case, "threads", 0) or threads
    return {**case.describe(), "threads": threads, "status": status, "reason": reason}


def build_matrix(
    preset: Preset, backends: list[str], sizes: list[int] | None, scaling: Iterable[int] = ()
) -> list[Case]:
    """Every case, fewest output pixels first, so slow backends are estimated before big ones;
    then, for each thread count in ``scaling``, every CPU backend's passes again at it."""
    cases = []
    order = sorted(preset.convs(sizes), key=lambda c: (c.pixels, c.geometry().flops_forward))
    for conv in order:
        for name in backends:
            backend = get_backend(name)
            transfer = backend.device == "gpu" and preset.transfer
            passes = [*PASSES, *GPU_PASSES] if transfer else [*PASSES]
            passes += [phase for phase in PHASES if callable(getattr(backend, phase, None))]
            cases += [Case(name, pass_, conv) for pass_ in passes]
    cpu = [name for name in backends if get_backend(name).device == "cpu"]
    for threads in sorted(scaling, reverse=True):
        cases += [
            Case(name, pass_, conv, threads) for conv in order for name in cpu for pass_ in PASSES
        ]
    return cases


def contenders(
    names: Iterable[str], preset: Preset | None = None
) -> tuple[list[str], dict[str, str]]:
    """Split backend names into those to time (with ``preset``) and those left out, with why."""
    timed, left_out = [], {}
    for name in names:
        backend = get_backend(name)
        if backend.role == "oracle":
            left_out[name] = "oracle, not a contender"
        elif preset is not None and backend.device not in preset.devices:
            left_out[name] = (
                f"a {backend.device.upper()} backend: the {preset.name} preset times "
                f"{' and '.join(d.upper() for d in preset.devices)} backends only"
            )
        else:
            timed.append(name)
    return timed, left_out
