"""Resource use of a running stage: CPU, memory, and GPU through NVML when present."""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["ResourceSampler"]


class _Gpu:
    """NVML handles, or nothing when there is no NVIDIA driver or no pynvml."""

    def __init__(self) -> None:
        self.handles: list[Any] = []
        try:
            import pynvml

            pynvml.nvmlInit()
            self.nvml = pynvml
            count = pynvml.nvmlDeviceGetCount()
            self.handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        except Exception:  # no driver, no library, no device: GPU sampling is optional
            self.handles = []

    def sample(self) -> tuple[float, int] | None:
        if not self.handles:
            return None
        util = sum(self.nvml.nvmlDeviceGetUtilizationRates(h).gpu for h in self.handles)
        used = sum(self.nvml.nvmlDeviceGetMemoryInfo(h).used for h in self.handles)
        return util / len(self.handles), used


class ResourceSampler:
    """Samples a process tree every ``interval`` seconds in a background thread."""

    def __init__(self, pid: int, interval: float = 0.25) -> None:
        self.pid = pid
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.cpu: list[float] = []
        self.peak_rss = 0
        self.gpu_util: list[float] = []
        self.gpu_peak_memory = 0

    def __enter__(self) -> ResourceSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=2)

    def _run(self) -> None:
        import psutil

        gpu = _Gpu()
        try:
            root = psutil.Process(self.pid)
        except psutil.Error:
            return
        known: dict[int, psutil.Process] = {}
        while not self._stop.is_set():
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.Error:
                break
            cpu, rss = 0.0, 0
            for proc in procs:
                proc = known.setdefault(proc.pid, proc)  # keep cpu_percent's baseline
                try:
                    cpu += proc.cpu_percent(None)
                    rss += proc.memory_info().rss
                except psutil.Error:
                    continue
            self.cpu.append(cpu)
            self.peak_rss = max(self.peak_rss, rss)
            sampled = gpu.sample()
            if sampled:
                self.gpu_util.append(sampled[0])
                self.gpu_peak_memory = max(self.gpu_peak_memory, sampled[1])
            self._stop.wait(self.interval)

    def summary(self) -> dict[str, Any]:
        cpu = self.cpu[1:] or self.cpu  # the first cpu_percent reading is always 0
        result: dict[str, Any] = {
            "samples": len(self.cpu),
            "cpu_percent_mean": round(sum(cpu) / len(cpu), 1) if cpu else None,
            "cpu_percent_max": round(max(cpu), 1) if cpu else None,
            "peak_rss_bytes": self.peak_rss or None,
        }
        if self.gpu_util:
            result["gpu_util_mean"] = round(sum(self.gpu_util) / len(self.gpu_util), 1)
            result["gpu_util_max"] = max(self.gpu_util)
            result["gpu_peak_memory_bytes"] = self.gpu_peak_memory
        return result
