"""CPU time per process group from /proc/<pid>/stat (utime + stime), as % of one core."""

from __future__ import annotations

import os
import time

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_ticks(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rindex(b")") + 2 :].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)


def machine_busy_ticks() -> int:
    """Ticks every CPU spent not idle (first line of /proc/stat, without idle and iowait)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return user + nice + system + irq + softirq + steal


class CpuMeter:
    """Snapshot groups of pids before and after; report each group's CPU over the interval.

    A pid first seen at the end (a new backend, a respawned worker) counts with all its CPU
    time; one gone by the end loses what it used (rare: everything here is long-lived).
    """

    def __init__(self) -> None:
        self.start_at = 0.0
        self.before: dict[int, int] = {}
        self.machine_before = 0
        self.machine = 0.0  # the whole machine, all processes, % of one core

    def start(self, groups: dict[str, list[int]]) -> None:
        self.before = {pid: t for pids in groups.values() for pid in pids if (t := cpu_ticks(pid))}
        self.machine_before = machine_busy_ticks()
        self.start_at = time.monotonic()

    def stop(self, groups: dict[str, list[int]]) -> tuple[float, dict[str, float]]:
        wall = time.monotonic() - self.start_at
        out: dict[str, float] = {}
        for name, pids in groups.items():
            used = 0
            for pid in set(pids):
                now = cpu_ticks(pid)
                if now is not None:
                    used += now - self.before.get(pid, 0)
            out[name] = 100.0 * used / TICKS / wall if wall > 0 else 0.0
        self.machine = 100.0 * (machine_busy_ticks() - self.machine_before) / TICKS / wall
        return wall, out
