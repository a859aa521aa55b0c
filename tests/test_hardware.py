"""mlpack.hardware: capture on this machine, nvidia-smi parsing on recorded outputs, differences."""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import sys
import time
import types
from dataclasses import replace
from pathlib import Path

import jsonschema
import pytest

from mlpack import hardware
from mlpack.errors import VerificationError
from mlpack.hardware import (
    Accelerator,
    HardwareProfile,
    ThreadPool,
    capture,
    differences,
    parse_cpuinfo,
    parse_gpu_query,
    parse_os_release,
    parse_smi_header,
)

REPO = Path(__file__).resolve().parents[1]
FIX = Path(__file__).parent / "data" / "hardware"
SCHEMA = json.loads((REPO / "spec" / "schema" / "hardware.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
posix_only = pytest.mark.skipif(os.name != "posix", reason="fake nvidia-smi is a shell script")


def base(**kw: object) -> HardwareProfile:
    fields = {"host_processor_model_name": "Intel(R) Xeon(R) Platinum 8480C", "machine": "x86_64",
              "python_implementation": "CPython", "python_version": "3.11.9",
              "host_processor_isa_flags": ("avx", "avx2", "avx512f", "fma"),
              "threadpools": (ThreadPool(user_api="blas", internal_api="openblas",
                                         prefix="libscipy_openblas", version="0.3.27",
                                         num_threads=16, architecture="SapphireRapids"),),
              "environment": {"OMP_NUM_THREADS": "16"},
              "accelerators": parse_gpu_query((FIX / "h100x8-query.csv").read_text()),
              "cuda_driver_version": "12.2", "cuda_runtime_version": "12.1", "cudnn_version": 8902,
              "host_memory_capacity_bytes": 2 << 40, "kernel_release": "5.15.0-105-generic"}
    fields.update(kw)
    return HardwareProfile(**fields)  # type: ignore[arg-type]


def fake_smi(directory: Path, body: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / "nvidia-smi"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(0o755)
    return directory


# ----------------------------------------------------------------------------- capture here

@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="this machine has nvidia-smi")
def test_capture_on_this_machine_is_populated_and_fast() -> None:
    capture()  # warm imports (threadpoolctl) so the timing is of the probes
    start = time.perf_counter()
    p = capture()
    assert time.perf_counter() - start < 0.5
    assert p.host_processor_model_name
    assert p.machine == platform.machine() and p.python_version == platform.python_version()
    assert p.host_processor_vcpu_count is not None and p.host_processor_vcpu_count >= 1
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    if "core id" in cpuinfo:
        assert p.host_processor_core_count is not None and p.host_processor_core_count >= 1
    if re.search(r"^(flags|Features)\s*:", cpuinfo, re.MULTILINE):
        assert isinstance(p.host_processor_isa_flags, tuple)
        assert list(p.host_processor_isa_flags) == sorted(set(p.host_processor_isa_flags))
        assert set(p.host_processor_isa_flags) <= hardware.ISA_FLAGS
        assert isinstance(p.to_dict()["host_processor_isa_flags"], list)
    if Path("/proc/meminfo").exists():
        assert p.host_memory_capacity_bytes is not None and p.host_memory_capacity_bytes > 2**20
    assert p.accelerators == () and p.cuda_driver_version is None
    assert "nvidia-smi: not found" in (p.notes or ())
    assert p.system_name is None  # only on request


def test_capture_round_trips_and_validates(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "never-recorded")
    p = capture(numpy=True, hostname=True)
    d = p.to_dict()
    assert d["environment"]["OMP_NUM_THREADS"] == "3"
    assert d["environment"]["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    assert "AWS_SECRET_ACCESS_KEY" not in d["environment"]
    assert d["system_name"] == platform.node()
    assert None not in d.values()
    text = json.dumps(d, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert HardwareProfile.from_dict(json.loads(text)) == p
    assert not list(VALIDATOR.iter_errors(json.loads(text)))
    # numpy is loaded, so its BLAS is seen by threadpoolctl and its build config is read
    assert p.numpy_version and p.numpy_blas and p.threadpools
    assert all(t.user_api in ("blas", "openmp") and "/" not in (t.prefix or "")
               for t in p.threadpools)
    assert "filepath" not in json.dumps(d)


def test_capture_never_raises_when_everything_is_missing(monkeypatch: pytest.MonkeyPatch,
                                                          tmp_path: Path) -> None:
    monkeypatch.setattr(hardware, "_read", lambda path: None)
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)  # import fails
    monkeypatch.setenv("PATH", str(tmp_path))
    p = capture()
    assert p.host_processor_model_name  # falls back to the platform
    assert p.host_processor_isa_flags is None and p.host_memory_capacity_bytes is None
    assert p.threadpools is None and any(n.startswith("threadpoolctl:") for n in p.notes or ())
    assert "host_processor_isa_flags" not in p.to_dict()
    assert not list(VALIDATOR.iter_errors(p.to_dict()))


def test_torch_probe_when_torch_is_loaded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    props = types.SimpleNamespace(total_memory=81559 << 20)
    cuda = types.SimpleNamespace(is_available=lambda: True, device_count=lambda: 2,
                                 get_device_name=lambda i: "NVIDIA H100 80GB HBM3",
                                 get_device_capability=lambda i: (9, 0),
                                 get_device_properties=lambda i: props)
    fake = types.SimpleNamespace(__version__="2.3.1+cu121", version=types.SimpleNamespace(cuda="12.1"),
                                 cuda=cuda, backends=types.SimpleNamespace(
                                     cudnn=types.SimpleNamespace(version=lambda: 8902)))
    monkeypatch.setitem(sys.modules, "torch", fake)
    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-smi: the GPUs come from torch
    p = capture()
    assert (p.torch_version, p.cuda_runtime_version, p.cudnn_version) == ("2.3.1+cu121", "12.1", 8902)
    assert [(a.name, a.compute_capability, a.memory_total_mib) for a in p.accelerators or ()] == \
        [("NVIDIA H100 80GB HBM3", "9.0", 81559)] * 2
    assert capture(torch=False).torch_version is None


# ----------------------------------------------------------------------------- nvidia-smi

def test_parse_h100x8_query() -> None:
    gpus = parse_gpu_query((FIX / "h100x8-query.csv").read_text())
    assert len(gpus) == 8
    assert {(g.name, g.driver_version, g.memory_total_mib, g.compute_capability) for g in gpus} == \
        {("NVIDIA H100 80GB HBM3", "535.129.03", 81559, "9.0")}
    assert len({g.uuid for g in gpus}) == 8 and all(str(g.uuid).startswith("GPU-") for g in gpus)
    assert [g.pci_bus_id for g in gpus][:2] == ["00000000:1B:00.0", "00000000:43:00.0"]


def test_parse_a100_query_and_errors() -> None:
    (gpu,) = parse_gpu_query((FIX / "a100x1-query.csv").read_text())
    assert gpu == Accelerator(name="NVIDIA A100-SXM4-80GB", driver_version="580.126.09",
                              memory_total_mib=81920, compute_capability="8.0",
                              uuid=gpu.uuid, pci_bus_id="00000000:00:04.0")
    assert parse_gpu_query((FIX / "no-devices.txt").read_text()) == ()
    assert parse_gpu_query((FIX / "driver-not-loaded.txt").read_text()) == ()
    assert parse_gpu_query("") == ()
    odd = parse_gpu_query("Acme, GPU X, 1.0, [N/A], N/A, GPU-1, 00000000:01:00.0\n")
    assert odd == (Accelerator(name="Acme, GPU X", driver_version="1.0", uuid="GPU-1",
                               pci_bus_id="00000000:01:00.0"),)


def test_parse_smi_banners() -> None:
    assert parse_smi_header((FIX / "h100x8-nvidia-smi.txt").read_text()) == \
        {"driver_version": "535.129.03", "cuda_version": "12.2"}
    assert parse_smi_header((FIX / "a100x1-nvidia-smi.txt").read_text()) == \
        {"driver_version": "580.126.09", "cuda_version": "13.0"}
    assert parse_smi_header((FIX / "b200-r610-header.txt").read_text()) == \
        {"driver_version": "610.43.02", "cuda_version": "13.3"}
    assert parse_smi_header((FIX / "driver-not-loaded.txt").read_text()) == {}


@posix_only
def test_capture_with_recorded_h100_node(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    log = tmp_path / "args"
    fake_smi(tmp_path / "bin", f"""echo "$@" >> {log}
case "$1" in
  --query-gpu=*) cat {FIX / "h100x8-query.csv"} ;;
  *) cat {FIX / "h100x8-nvidia-smi.txt"} ;;
esac
""")
    monkeypatch.setenv("PATH", str(tmp_path / "bin") + os.pathsep + os.environ["PATH"])
    p = capture()
    assert len(p.accelerators or ()) == 8 and p.cuda_driver_version == "12.2"
    assert log.read_text().splitlines()[0] == \
        "--query-gpu=name,driver_version,memory.total,compute_cap,uuid,pci.bus_id " \
        "--format=csv,noheader,nounits"
    assert not list(VALIDATOR.iter_errors(p.to_dict()))
    assert HardwareProfile.from_dict(p.to_dict()) == p


@posix_only
@pytest.mark.parametrize(("fixture", "status"), [("no-devices.txt", 6), ("driver-not-loaded.txt", 9)])
def test_capture_when_nvidia_smi_fails(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                       fixture: str, status: int) -> None:
    fake_smi(tmp_path, f"cat {FIX / fixture}\nexit {status}\n")
    monkeypatch.setenv("PATH", str(tmp_path) + os.pathsep + os.environ["PATH"])
    p = capture()
    assert p.accelerators == () and p.cuda_driver_version is None
    first = (FIX / fixture).read_text().splitlines()[0]
    assert f"nvidia-smi: exit {status}: {first}" in (p.notes or ())


def test_capture_when_nvidia_smi_is_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory
    p = capture()
    assert p.accelerators == () and "nvidia-smi: not found" in (p.notes or ())


@posix_only
def test_capture_when_nvidia_smi_hangs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # the shell waits on a child that holds the pipe: only killing the group ends it
    fake_smi(tmp_path, "sleep 30\necho late\n")
    monkeypatch.setenv("PATH", str(tmp_path) + os.pathsep + os.environ["PATH"])
    start = time.perf_counter()
    p = capture(smi_timeout=0.3)
    assert time.perf_counter() - start < 5
    assert p.accelerators == ()
    assert any(n.startswith("nvidia-smi: TimeoutExpired") for n in p.notes or ())


# ----------------------------------------------------------------------------- pure parsers

FLAGS = ["fpu", "sse2", "avx", "avx2", "fma", "amx_tile", "amx_bf16", "avx512f", "aes"]


def test_parse_cpuinfo_two_sockets_and_arm64() -> None:
    blocks = []
    for cpu in range(8):
        blocks.append(f"processor\t: {cpu}\nvendor_id\t: GenuineIntel\n"
                      f"model name\t: Intel(R) Xeon(R) Platinum 8480C\ncpu MHz\t\t: 2000.000\n"
                      f"physical id\t: {cpu // 4}\ncore id\t\t: {cpu % 4 // 2}\ncpu cores\t: 2\n"
                      f"flags\t\t: {' '.join(FLAGS)}\n")
    info = parse_cpuinfo("\n".join(blocks))
    assert info == {"model": "Intel(R) Xeon(R) Platinum 8480C", "vendor": "GenuineIntel",
                    "flags": sorted(FLAGS),
                    "sockets": 2, "cores_per_socket": 2, "mhz": 2000.0}
    arm = parse_cpuinfo("processor\t: 0\nBogoMIPS\t: 50.00\n"
                        "Features\t: fp asimd evtstrm aes sve sve2 bf16 i8mm\n"
                        "CPU implementer\t: 0x41\nCPU part\t: 0xd4f\n")
    assert arm["model"] == "ARM implementer 0x41 part 0xd4f" and "sve2" in arm["flags"]
    assert arm["sockets"] is None and arm["mhz"] is None
    assert parse_cpuinfo("")["flags"] is None


def test_parse_os_release() -> None:
    text = 'PRETTY_NAME="Ubuntu 22.04.4 LTS"\nNAME="Ubuntu"\nVERSION_ID="22.04"\nID=ubuntu\n# c\n'
    assert parse_os_release(text) == {"PRETTY_NAME": "Ubuntu 22.04.4 LTS", "NAME": "Ubuntu",
                                      "VERSION_ID": "22.04", "ID": "ubuntu"}


# ----------------------------------------------------------------------------- differences

def kinds(a: HardwareProfile, b: HardwareProfile) -> dict[str, str]:
    return {d.field: d.severity for d in differences(a, b)}


def test_no_differences_and_notes_ignored() -> None:
    assert differences(base(), base(notes=("nvidia-smi: not found",))) == []


def test_isa_flags_report_only_one_sided_flags() -> None:
    (d,) = differences(base(), base(host_processor_isa_flags=("avx", "avx2", "fma", "amx_tile")))
    assert (d.field, d.recorded, d.current, d.severity) == \
        ("host_processor_isa_flags", ["avx512f"], ["amx_tile"], "numerics")
    (d,) = differences(base(), base(host_processor_isa_flags=None))  # unknown now
    assert d.severity == "numerics" and d.current is None


def test_blas_threads_and_env_are_numerics() -> None:
    pool = replace(base().threadpools[0], num_threads=4)  # type: ignore[index]
    omp = ThreadPool(user_api="openmp", internal_api="openmp", prefix="libgomp", num_threads=4)
    d = differences(base(), base(threadpools=(pool, omp),
                                 environment={"OMP_NUM_THREADS": "4", "PYTHONHASHSEED": "0"}))
    assert [(x.field, x.recorded, x.current, x.severity) for x in d] == [
        ("threadpools[openblas:libscipy_openblas].num_threads", 16, 4, "numerics"),
        ("threadpools[openmp:libgomp]", None, omp.to_dict(), "numerics"),
        ("environment.OMP_NUM_THREADS", "16", "4", "numerics"),
        ("environment.PYTHONHASHSEED", None, "0", "numerics"),
    ]


def test_gpu_model_and_cuda_are_numerics_uuid_is_info() -> None:
    a100 = parse_gpu_query((FIX / "a100x1-query.csv").read_text())
    k = kinds(base(), base(accelerators=a100, cuda_driver_version="13.0", cudnn_version=90100))
    assert k == {"accelerators.count": "numerics", "accelerators[0].name": "numerics",
                 "accelerators[0].compute_capability": "numerics",
                 "accelerators[0].driver_version": "numerics",
                 "accelerators[0].memory_total_mib": "info", "accelerators[0].uuid": "info",
                 "accelerators[0].pci_bus_id": "info", "cuda_driver_version": "numerics",
                 "cudnn_version": "numerics"}
    swapped = tuple(replace(g, uuid="GPU-other") for g in base().accelerators or ())
    assert set(kinds(base(), base(accelerators=swapped)).values()) == {"info"}


def test_host_facts_are_info_platform_is_numerics() -> None:
    k = kinds(base(), base(host_memory_capacity_bytes=1 << 40, system_name="node-7",
                           kernel_release="6.8.0", host_processor_model_name="Other CPU",
                           libc="glibc 2.39", python_version="3.12.1"))
    assert k == {"host_memory_capacity_bytes": "info", "system_name": "info",
                 "kernel_release": "info", "host_processor_model_name": "info",
                 "libc": "numerics", "python_version": "numerics"}


# ----------------------------------------------------------------------------- from_dict, schema, spec

def test_from_dict_is_strict_about_known_fields() -> None:
    good = base().to_dict()
    assert HardwareProfile.from_dict({**good, "x-vendor-extra": {"a": 1}}) == base()
    bad = [({**good, "cudnn_version": "8902"}, "hardware.cudnn_version must be of type int"),
           ({**good, "libc": None}, "hardware.libc must be of type str"),
           ({k: v for k, v in good.items() if k != "machine"}, "hardware.machine is required"),
           ({**good, "host_processor_core_count": True}, "host_processor_core_count must be"),
           ({**good, "environment": {"A": 1}}, "hardware.environment must be an object of strings"),
           ({**good, "accelerators": [{"driver_version": "1"}]}, "accelerators[0].name is required"),
           ({**good, "threadpools": {}}, "hardware.threadpools must be an array")]
    for doc, message in bad:
        with pytest.raises(VerificationError, match=re.escape(message)) as e:
            HardwareProfile.from_dict(doc)
        assert e.value.code == "E_MANIFEST"
        assert list(VALIDATOR.iter_errors(doc)), doc  # the schema refuses them too
    with pytest.raises(VerificationError, match="must be an object"):
        HardwareProfile.from_dict([])


def test_schema_is_valid_2020_12() -> None:
    assert SCHEMA["$id"] == "https://mlpack.dev/schema/v1/hardware.schema.json"
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    # every field of the record is in the schema and vice versa
    assert set(SCHEMA["properties"]) == set(HardwareProfile.__dataclass_fields__)
    assert set(SCHEMA["required"]) == {"host_processor_model_name", "machine",
                                       "python_implementation", "python_version"}


def test_spec_examples_validate_and_round_trip() -> None:
    text = (REPO / "spec" / "hardware.md").read_text()
    found = re.findall(r"^```json schema=hardware\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
    assert len(found) >= 2
    for block in found:
        doc = json.loads(block)
        assert not list(VALIDATOR.iter_errors(doc))
        assert HardwareProfile.from_dict(doc).to_dict() == doc


def test_two_openblas_pools_under_one_prefix_are_told_apart() -> None:
    """numpy and scipy each load their own OpenBLAS (same prefix, other versions), in any order."""
    numpy_blas = ThreadPool(user_api="blas", internal_api="openblas", prefix="libscipy_openblas",
                            version="0.3.31", num_threads=1)
    scipy_blas = replace(numpy_blas, version="0.3.30")
    assert differences(base(threadpools=(numpy_blas, scipy_blas)), base(threadpools=(scipy_blas, numpy_blas))) == []
    d = differences(base(threadpools=(numpy_blas, scipy_blas)),
                    base(threadpools=(numpy_blas, replace(scipy_blas, num_threads=2))))
    assert [(x.field, x.recorded, x.current) for x in d] == [
        ("threadpools[openblas:libscipy_openblas:0.3.30].num_threads", 1, 2)]
