"""The system monitor: CPU, RAM, GPU and VRAM, sampled in a background thread.

A monitor runs only between ``start()`` and ``stop()`` (a run starts one when it first
generates and stops it when it ends), at a bounded rate, into a bounded buffer. GPU figures
come from NVML (nvidia-ml-py) when it finds a GPU; without one they are None, not zero.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True, slots=True)
class SystemSample:
    """One reading. CPU percentages are of all cores (100 = every core busy)."""

    time_s: float  # Unix time of the reading
    cpu_percent: float  # the whole machine, since the previous reading
    process_cpu_percent: float  # this process, since the previous reading
    ram_used_bytes: int
    ram_total_bytes: int
    process_rss_bytes: int
    gpu_percent: float | None = None  # mean utilisation of the visible GPUs
    vram_used_bytes: int | None = None  # summed over the visible GPUs
    vram_total_bytes: int | None = None

    # Recorded as it is (rudder.trace._records); pydantic reads this only when imported.
    __pydantic_config__: ClassVar = {"json_schema_serialization_defaults_required": True}


class SystemMonitor:
    """Samples every ``interval_s`` seconds while started; keeps the last ``max_samples``."""

    def __init__(
        self,
        interval_s: float,
        max_samples: int,
        on_sample: Callable[[SystemSample], None] | None = None,
    ) -> None:
        self.interval_s = interval_s
        self.samples: collections.deque[SystemSample] = collections.deque(maxlen=max_samples)
        self._on_sample = on_sample
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._process: Any = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self._thread is not None:
            return
        import psutil

        self._process = psutil.Process()
        # The first CPU reading of psutil is a baseline (it reads 0.0): take it now.
        psutil.cpu_percent(None)
        self._process.cpu_percent(None)
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="rudder-monitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and take a last sample (so a short run has one too)."""
        thread = self._thread
        if thread is None:
            return
        self._stop.set()
        thread.join()
        self._thread = None
        self._take()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._take()

    def _take(self) -> None:
        sample = read_sample(self._process)
        self.samples.append(sample)
        if self._on_sample is not None:
            self._on_sample(sample)


def read_sample(process: Any) -> SystemSample:
    """A reading now; CPU figures cover the time since the previous reading."""
    import psutil

    memory = psutil.virtual_memory()
    gpu = _gpu_reading()
    with process.oneshot():
        process_cpu = process.cpu_percent(None) / (psutil.cpu_count() or 1)
        rss = process.memory_info().rss
    return SystemSample(
        time_s=time.time(),
        cpu_percent=psutil.cpu_percent(None),
        process_cpu_percent=process_cpu,
        ram_used_bytes=memory.total - memory.available,
        ram_total_bytes=memory.total,
        process_rss_bytes=rss,
        gpu_percent=gpu[0] if gpu else None,
        vram_used_bytes=gpu[1] if gpu else None,
        vram_total_bytes=gpu[2] if gpu else None,
    )


_nvml_handles: list[Any] | None = None
_nvml_lock = threading.Lock()


def _gpu_reading() -> tuple[float, int, int] | None:
    """(mean utilisation %, VRAM used, VRAM total) over the visible GPUs, or None."""
    handles = _gpu_handles()
    if not handles:
        return None
    import pynvml

    try:
        utilisation = [pynvml.nvmlDeviceGetUtilizationRates(h).gpu for h in handles]
        memory = [pynvml.nvmlDeviceGetMemoryInfo(h) for h in handles]
    except pynvml.NVMLError:
        return None
    return (
        sum(utilisation) / len(utilisation),
        sum(int(m.used) for m in memory),
        sum(int(m.total) for m in memory),
    )


def _gpu_handles() -> list[Any]:
    """NVML's device handles, found once; none without nvidia-ml-py, a driver or a GPU."""
    global _nvml_handles
    with _nvml_lock:
        if _nvml_handles is None:
            _nvml_handles = []
            try:
                import pynvml

                pynvml.nvmlInit()
                count = pynvml.nvmlDeviceGetCount()
                _nvml_handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
            except Exception:  # no library, no driver or no device: GPU figures are absent
                _nvml_handles = []
        return _nvml_handles
