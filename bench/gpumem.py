"""Peak GPU memory of whatever runs on one GPU, read by polling nvidia-smi (works for any child process tree)."""

from __future__ import annotations

import shutil
import subprocess
import threading


def gpu_memory_used_mib(index: int = 0) -> int | None:
    """memory.used of GPU ``index`` in MiB (the CUDA contexts and caching allocators of every process), or None."""
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        out = subprocess.run(["nvidia-smi", f"--id={index}", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10, check=True).stdout
        return int(float(out.strip().splitlines()[0]))
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


class PeakGpuMemory:
    """``with PeakGpuMemory(0) as peak: ...`` then ``peak.peak_gib``: the highest memory.used seen while the block
    ran, minus what was in use when it started; None without nvidia-smi (CPU runs)."""

    def __init__(self, index: int | None = 0, interval_s: float = 0.25):
        self.index, self.interval_s = index, interval_s
        self.idle_mib: int | None = None
        self.max_mib: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> PeakGpuMemory:
        if self.index is None:
            return self
        self.idle_mib = gpu_memory_used_mib(self.index)
        if self.idle_mib is not None:
            self.max_mib = self.idle_mib
            self._thread = threading.Thread(target=self._poll, daemon=True)
            self._thread.start()
        return self

    def _poll(self) -> None:
        while not self._stop.wait(self.interval_s):
            used = gpu_memory_used_mib(self.index)
            if used is not None and (self.max_mib is None or used > self.max_mib):
                self.max_mib = used

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=15)

    @property
    def peak_gib(self) -> float | None:
        if self.max_mib is None or self.idle_mib is None:
            return None
        return round((self.max_mib - self.idle_mib) / 1024, 2)
