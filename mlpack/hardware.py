"""The ``hardware`` section of mlpack.json (spec/hardware.md): machine and platform profile.

:func:`capture` profiles this machine, with MLPerf ``system_desc`` field names where one fits;
every probe is best-effort (a missing file or tool leaves its field empty and adds a line to
``notes``; nothing raises). :func:`differences` says which changes can alter numerics.

    >>> p = HardwareProfile(host_processor_model_name="cpu", machine="x86_64",
    ...                     python_implementation="CPython", python_version="3.11.9")
    >>> q = HardwareProfile.from_dict({**p.to_dict(), "libc": "glibc 2.39"})
    >>> [(d.field, d.severity) for d in differences(p, q)]
    [('libc', 'numerics')]
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, Literal

from ._records import Codec, Record
from .archive import MANIFEST_NAME
from .errors import VerificationError

__all__ = ["Accelerator", "Difference", "HardwareProfile", "ThreadPool", "capture", "differences",
           "parse_cpuinfo", "parse_gpu_query", "parse_os_release", "parse_smi_header"]

# /proc/cpuinfo flags (x86) and Features (arm64) that select different kernels or roundings.
_FLAGS = (
    "pni ssse3 sse4_1 sse4_2 sse4a avx avx2 fma fma4 f16c avx512f avx512cd avx512bw avx512dq "
    "avx512vl avx512ifma avx512vbmi avx512_vbmi2 avx512_vnni avx512_bf16 avx512_fp16 avx512_bitalg "
    "avx512_vpopcntdq avx_vnni avx_vnni_int8 avx_ifma avx_ne_convert amx_tile amx_bf16 amx_int8 "
    "amx_fp16 amx_complex sha_ni asimd fphp asimdhp asimddp asimdfhm fcma frint sve sve2 svebf16 "
    "svei8mm bf16 i8mm sme sme2")
ISA_FLAGS = frozenset(_FLAGS.split())
# Environment variables that change thread counts, kernel choice, determinism or precision.
NUMERICS_ENV = (
    "OMP_NUM_THREADS", "OMP_DYNAMIC", "OMP_PROC_BIND", "MKL_NUM_THREADS", "MKL_CBWR",
    "MKL_ENABLE_INSTRUCTIONS", "MKL_DEBUG_CPU_TYPE", "MKL_THREADING_LAYER", "OPENBLAS_NUM_THREADS",
    "OPENBLAS_CORETYPE", "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS",
    "NPY_DISABLE_CPU_FEATURES", "ATEN_CPU_CAPABILITY", "DNNL_MAX_CPU_ISA", "ONEDNN_MAX_CPU_ISA",
    "TF_ENABLE_ONEDNN_OPTS", "TF_DETERMINISTIC_OPS", "TF_CUDNN_DETERMINISTIC", "XLA_FLAGS",
    "JAX_ENABLE_X64", "JAX_DEFAULT_MATMUL_PRECISION", "PYTHONHASHSEED", "CUDA_VISIBLE_DEVICES",
    "CUDA_DEVICE_ORDER", "CUDA_LAUNCH_BLOCKING", "CUBLAS_WORKSPACE_CONFIG", "NVIDIA_TF32_OVERRIDE",
    "TORCH_ALLOW_TF32_CUBLAS_OVERRIDE", "TORCH_CUDNN_V8_API_DISABLED", "TORCH_BLAS_PREFER_CUBLASLT",
    "NCCL_ALGO", "NCCL_PROTO")
GPU_QUERY = ("name", "driver_version", "memory.total", "compute_cap", "uuid", "pci.bus_id")
SMI_TIMEOUT = 5.0
# Fields whose change can alter results; every other scalar field is "info".
NUMERICS_FIELDS = frozenset((
    "host_processor_vendor", "machine", "libc", "python_implementation", "python_version",
    "numpy_version", "numpy_blas", "numpy_simd", "torch_version", "cuda_driver_version",
    "cuda_runtime_version", "cudnn_version"))
Severity = Literal["numerics", "info"]


def _err(path: str, why: str) -> VerificationError:
    return VerificationError(f"{MANIFEST_NAME}: hardware.{path} {why}", code="E_MANIFEST",
                             member=MANIFEST_NAME)


class _Record(Record):
    """A record of the profile; decoded by the module's codec (mlpack/_records.py)."""

    __slots__ = ()


@dataclass(frozen=True, kw_only=True, slots=True)
class Accelerator(_Record):
    """One GPU as ``nvidia-smi --query-gpu`` (or torch.cuda) reports it."""

    name: str
    driver_version: str | None = None
    memory_total_mib: int | None = None
    compute_capability: str | None = None
    uuid: str | None = None
    pci_bus_id: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class ThreadPool(_Record):
    """A BLAS or OpenMP runtime loaded in the process (threadpoolctl.threadpool_info())."""

    user_api: str
    internal_api: str
    prefix: str | None = None
    version: str | None = None
    num_threads: int | None = None
    threading_layer: str | None = None
    architecture: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class HardwareProfile(_Record):
    """The ``hardware`` section; field names follow MLPerf ``system_desc`` where they fit."""

    host_processor_model_name: str
    machine: str
    python_implementation: str
    python_version: str
    host_processor_vendor: str | None = None
    host_processors_per_node: int | None = None
    host_processor_core_count: int | None = None
    host_processor_vcpu_count: int | None = None
    usable_cpu_count: int | None = None
    host_processor_frequency_mhz: float | None = None
    host_processor_isa_flags: tuple[str, ...] | None = None
    host_memory_capacity_bytes: int | None = None
    operating_system: str | None = None
    os_id: str | None = None
    os_version_id: str | None = None
    kernel_release: str | None = None
    libc: str | None = None
    system_name: str | None = None
    threadpools: tuple[ThreadPool, ...] | None = None
    numpy_version: str | None = None
    numpy_blas: str | None = None
    numpy_simd: tuple[str, ...] | None = None
    environment: Mapping[str, str] | None = None
    accelerators: tuple[Accelerator, ...] | None = None
    cuda_driver_version: str | None = None
    cuda_runtime_version: str | None = None
    cudnn_version: int | None = None
    torch_version: str | None = None
    notes: tuple[str, ...] | None = None


_RECORDS: dict[str, type[_Record]] = {"Accelerator": Accelerator, "ThreadPool": ThreadPool}
_Record._codec = Codec(error=lambda path, why, _member: _err(path, why), records=_RECORDS)


@dataclass(frozen=True, kw_only=True, slots=True)
class Difference:
    """One field that differs between a recorded and a current profile."""

    field: str
    recorded: Any
    current: Any
    severity: Severity


def parse_cpuinfo(text: str) -> dict[str, Any]:
    """Model, vendor, all flags, sockets, cores per socket and MHz from /proc/cpuinfo."""
    first: dict[str, str] = {}
    pairs: set[tuple[str, str]] = set()
    sockets: set[str] = set()
    for block in re.split(r"\n\s*\n", text):
        kv = {k.strip(): v.strip() for k, _, v in (ln.partition(":") for ln in block.splitlines())}
        for k, v in kv.items():
            first.setdefault(k, v)
        if "physical id" in kv:
            sockets.add(kv["physical id"])
            if "core id" in kv:
                pairs.add((kv["physical id"], kv["core id"]))
    model = first.get("model name") or first.get("Model name") or first.get("cpu model")
    if not model and "CPU implementer" in first:
        model = f"ARM implementer {first['CPU implementer']} part {first.get('CPU part', '?')}"
    cores = len(pairs) // len(sockets) if pairs else None
    if cores is None and first.get("cpu cores", "").isdigit():
        cores = int(first["cpu cores"])
    mhz, flags = first.get("cpu MHz", ""), first.get("flags", first.get("Features"))
    return {"model": model or None, "vendor": first.get("vendor_id") or None,
            "flags": None if flags is None else sorted(set(flags.split())),
            "sockets": len(sockets) or None, "cores_per_socket": cores,
            "mhz": float(mhz) if re.fullmatch(r"\d+(\.\d+)?", mhz) else None}


def parse_os_release(text: str) -> dict[str, str]:
    """KEY=value lines of os-release(5), quotes removed."""
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and re.fullmatch(r"[A-Z0-9_]+", key):
            out[key] = value.strip().strip("\"'")
    return out


def parse_gpu_query(text: str) -> tuple[Accelerator, ...]:
    """Rows of ``nvidia-smi --query-gpu=<GPU_QUERY> --format=csv,noheader,nounits``.

    Lines that are not rows ("No devices were found", error text) are skipped; ``[N/A]``
    and ``N/A`` become None; a name that contains commas is kept whole.
    """
    gpus = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.rsplit(",", len(GPU_QUERY) - 1)]
        if len(cells) != len(GPU_QUERY) or not cells[0]:
            continue
        v = [None if c in ("", "N/A", "[N/A]", "[Not Supported]") else c for c in cells]
        mem = v[2]
        gpus.append(Accelerator(name=cells[0], driver_version=v[1], compute_capability=v[3],
                                memory_total_mib=int(mem) if mem and mem.isdigit() else None,
                                uuid=v[4], pci_bus_id=v[5]))
    return tuple(gpus)


def parse_smi_header(text: str) -> dict[str, str]:
    """Driver and CUDA versions from the banner of plain ``nvidia-smi`` (R535 to R610 layouts)."""
    out = {}
    if m := re.search(r"(?:Driver|KMD) Version:\s*([0-9][0-9.]*)", text):
        out["driver_version"] = m.group(1)
    if m := re.search(r"CUDA (?:UMD )?Version:\s*([0-9][0-9.]*)", text):
        out["cuda_version"] = m.group(1)
    return out


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return None


def _run(argv: Sequence[str], timeout: float) -> tuple[int, str]:
    """Exit status and stdout+stderr; the whole process group is killed on timeout."""
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, errors="replace",
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    return proc.returncode, out


def _gpus(timeout: float, notes: list[str]) -> tuple[tuple[Accelerator, ...], str | None]:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        notes.append("nvidia-smi: not found")
        return (), None
    try:
        rc, out = _run([smi, "--query-gpu=" + ",".join(GPU_QUERY), "--format=csv,noheader,nounits"],
                       timeout)
        if rc != 0:
            notes.append(f"nvidia-smi: exit {rc}: {(out.strip().splitlines() or [''])[0]}")
            return (), None
        gpus = parse_gpu_query(out)
        rc, banner = _run([smi], timeout)
        return gpus, parse_smi_header(banner).get("cuda_version") if rc == 0 else None
    except Exception as e:  # noqa: BLE001 -- includes the timeout
        notes.append(f"nvidia-smi: {type(e).__name__}: {e}")
        return (), None


def _torch(mode: bool | None) -> dict[str, Any]:
    if mode is False:
        return {}
    if "torch" not in sys.modules and (not mode or not importlib.util.find_spec("torch")):
        return {}
    torch = importlib.import_module("torch")

    out: dict[str, Any] = {"torch_version": str(torch.__version__),
                           "cuda_runtime_version": torch.version.cuda}
    if torch.cuda.is_available():
        out["cudnn_version"] = torch.backends.cudnn.version()
        out["accelerators"] = tuple(
            Accelerator(name=torch.cuda.get_device_name(i),
                        compute_capability="{}.{}".format(*torch.cuda.get_device_capability(i)),
                        memory_total_mib=torch.cuda.get_device_properties(i).total_memory >> 20)
            for i in range(torch.cuda.device_count()))
    return out


def _numpy() -> dict[str, Any]:
    np = sys.modules.get("numpy")
    if np is None:
        return {}
    cfg = np.show_config(mode="dicts")
    blas = cfg.get("Build Dependencies", {}).get("blas", {})
    simd = cfg.get("SIMD Extensions", {})
    return {"numpy_version": np.__version__,
            "numpy_blas": f"{blas.get('name', '?')} {blas.get('version', '?')}" if blas else None,
            "numpy_simd": tuple(simd.get("baseline", [])) + tuple(simd.get("found", []))}


def _probe(notes: list[str], name: str, fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except Exception as e:  # noqa: BLE001 -- a probe never breaks a capture
        notes.append(f"{name}: {type(e).__name__}: {e}")
        return None


def _pools() -> tuple[ThreadPool, ...]:
    threadpool_info = importlib.import_module("threadpoolctl").threadpool_info
    keep = frozenset(f.name for f in fields(ThreadPool))
    return tuple(ThreadPool.from_dict({k: v for k, v in p.items() if k in keep and v is not None})
                 for p in threadpool_info())


def _host(hostname: bool) -> dict[str, Any]:
    cpu = parse_cpuinfo(_read("/proc/cpuinfo") or "")
    osr = parse_os_release(_read("/etc/os-release") or _read("/usr/lib/os-release") or "")
    khz = (_read("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq") or "").strip()
    mem = re.search(r"^MemTotal:\s+(\d+) kB", _read("/proc/meminfo") or "", re.MULTILINE)
    libc = platform.libc_ver()
    return {
        "host_processor_model_name": cpu["model"] or platform.processor() or platform.machine(),
        "host_processor_vendor": cpu["vendor"], "host_processors_per_node": cpu["sockets"],
        "host_processor_core_count": cpu["cores_per_socket"],
        "host_processor_vcpu_count": os.cpu_count(),
        "usable_cpu_count": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
        else None,
        "host_processor_frequency_mhz": int(khz) / 1000 if khz.isdigit() else cpu["mhz"],
        "host_processor_isa_flags": None if cpu["flags"] is None else
        tuple(f for f in cpu["flags"] if f in ISA_FLAGS),
        "host_memory_capacity_bytes": int(mem.group(1)) * 1024 if mem else None,
        "operating_system": osr.get("PRETTY_NAME") or platform.system() or None,
        "os_id": osr.get("ID"), "os_version_id": osr.get("VERSION_ID"),
        "kernel_release": platform.release() or None, "libc": " ".join(libc) if libc[0] else None,
        "system_name": platform.node() if hostname else None}


def capture(*, hostname: bool = False, numpy: bool = False, torch: bool | None = None,
            smi_timeout: float = SMI_TIMEOUT) -> HardwareProfile:
    """Profile this machine and process. Never raises; failed probes are listed in ``notes``.

    ``hostname`` records ``system_name`` (off by default: packs are published). ``numpy``
    imports numpy when installed, so that its BLAS is loaded and profiled (about 0.1 s);
    otherwise only libraries already loaded are seen. ``torch``: None probes torch only if
    already imported, True imports it if installed, False never.
    """
    notes: list[str] = []
    if numpy and "numpy" not in sys.modules:
        _probe(notes, "numpy", __import__, "numpy")
    found: dict[str, Any] = {**(_probe(notes, "host", _host, hostname) or {}),
                             **(_probe(notes, "numpy", _numpy) or {}),
                             **(_probe(notes, "torch", _torch, torch) or {})}
    gpus, cuda = _gpus(smi_timeout, notes)
    if gpus or "accelerators" not in found:
        found["accelerators"] = gpus
    found.setdefault("host_processor_model_name", platform.machine())
    return HardwareProfile(
        machine=platform.machine(), python_implementation=platform.python_implementation(),
        python_version=platform.python_version(),
        threadpools=_probe(notes, "threadpoolctl", _pools),
        environment={k: os.environ[k] for k in NUMERICS_ENV if k in os.environ},
        cuda_driver_version=cuda, notes=tuple(notes), **found)


def _pools_by_key(pools: Sequence[ThreadPool]) -> dict[str, dict[str, Any]]:
    """Thread pools by ``internal_api:prefix``; when one process loaded two pools under the
    same key (numpy's and scipy's own OpenBLAS), those are told apart by version (``#2`` for
    exact duplicates). Order-independent: threadpoolctl lists pools in load order."""
    groups: dict[str, list[ThreadPool]] = {}
    for t in sorted(pools, key=lambda t: (t.internal_api, t.prefix or "", t.version or "", t.num_threads or 0)):
        groups.setdefault(f"{t.internal_api}:{t.prefix}", []).append(t)
    out: dict[str, dict[str, Any]] = {}
    for base, members in groups.items():
        for t in members:
            key = base if len(members) == 1 else f"{base}:{t.version}"
            n, unique = 1, key
            while unique in out:
                n += 1
                unique = f"{key}#{n}"
            out[unique] = t.to_dict()
    return out


def differences(recorded: HardwareProfile, current: HardwareProfile) -> list[Difference]:
    """Every difference between two profiles, in field order, each "numerics" or "info"."""
    out: list[Difference] = []

    def add(name: str, a: Any, b: Any, severity: Severity) -> None:
        if a != b:
            out.append(Difference(field=name, recorded=a, current=b, severity=severity))

    for f in fields(HardwareProfile):
        a, b = getattr(recorded, f.name), getattr(current, f.name)
        if f.name == "notes" or a == b:
            continue
        if f.name == "host_processor_isa_flags" and a is not None and b is not None:
            add(f.name, sorted(set(a) - set(b)), sorted(set(b) - set(a)), "numerics")  # one-sided
        elif f.name == "environment":  # an unset variable compares as None
            a, b = a or {}, b or {}
            for k in sorted(set(a) | set(b)):
                add(f"environment.{k}", a.get(k), b.get(k), "numerics")
        elif f.name == "threadpools":
            pa, pb = (_pools_by_key(x or ()) for x in (a, b))
            for k in sorted(set(pa) | set(pb)):
                if k not in pa or k not in pb:
                    add(f"threadpools[{k}]", pa.get(k), pb.get(k), "numerics")
                    continue
                for key in sorted(set(pa[k]) | set(pb[k])):
                    add(f"threadpools[{k}].{key}", pa[k].get(key), pb[k].get(key), "numerics")
        elif f.name == "accelerators":
            a, b = a or (), b or ()
            add("accelerators.count", len(a), len(b), "numerics")
            for i, (ga, gb) in enumerate(zip(a, b)):
                for g in ("name", "compute_capability", "driver_version"):
                    add(f"accelerators[{i}].{g}", getattr(ga, g), getattr(gb, g), "numerics")
                for g in ("memory_total_mib", "uuid", "pci_bus_id"):
                    add(f"accelerators[{i}].{g}", getattr(ga, g), getattr(gb, g), "info")
        else:
            numerics = f.name in NUMERICS_FIELDS or f.name == "host_processor_isa_flags"
            add(f.name, a, b, "numerics" if numerics else "info")
    return out
