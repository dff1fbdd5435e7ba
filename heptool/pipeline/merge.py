"""The counts of ``listen --workers``' workers summed, shown as one collector.

Each worker sends :meth:`heptool.pipeline.collector.Collector.snapshot` (plain data) to the
supervisor (:mod:`heptool.pipeline.workers`); :class:`MergedCounts` keeps the latest one of
each worker and sums them, so the collector's own ``stats_line``, ``summary_lines`` and the
metrics (:func:`heptool.net.metrics.listen_families`) print the whole run as one.
"""

from __future__ import annotations

from typing import Any

from heptool.net.senders import TargetStatus
from heptool.net.stats import ServerStats
from heptool.pipeline.collector import Collector
from heptool.pipeline.handlers import Tally

__all__ = ["ForwardState", "MergedCounts"]


class MergedCounts(Collector):
    """The sum of the workers' snapshots, shown as one collector: ``stats_line``,
    ``summary_lines`` and the metrics read it (it listens on nothing itself)."""

    def __init__(self) -> None:
        super().__init__([])
        self.snapshots: dict[int, dict[str, Any]] = {}
        self.merged_files: list[str] = []
        self.merged_forwards: list[tuple[TargetStatus, str | None]] = []

    def update(self, k: int, snap: dict[str, Any]) -> None:
        self.snapshots[k] = snap
        snaps = [self.snapshots[i] for i in sorted(self.snapshots)]
        st = ServerStats()
        tally = Tally()
        kd = None
        files: list[str] = []
        hep: dict[tuple, list[int]] = {}
        for s in snaps:
            st.packets.update(s["packets"])
            st.bytes.update(s["bytes"])
            st.drops.update(s["drops"])
            st.closed.update(s["closed"])
            st.connections += s["connections"]
            st.open_connections += s["open_connections"]
            st.garbage_bytes += s["garbage_bytes"]
            st.resyncs += s["resyncs"]
            st.truncated_bytes += s["truncated_bytes"]
            tally.accepted += s["accepted"]
            tally.protos.update(s["protos"])
            if s["kernel_drops"] is not None:
                kd = (kd or 0) + s["kernel_drops"]
            files += s["files"]
            for key, (n, b) in (s["hep_counts"] or {}).items():
                e = hep.setdefault(key, [0, 0])
                e[0] += n
                e[1] += b
        st.started = self.stats.started
        self.stats = st
        self.tally = tally
        self.kernel_drops = kd
        self.merged_files = files
        if self.hep_counts is not None:
            self.hep_counts.counts = hep
        forwards: list[tuple[TargetStatus, str | None]] = []
        for i in range(max((len(s["forwards"]) for s in snaps), default=0)):
            mine = [s["forwards"][i] for s in snaps if i < len(s["forwards"])]
            sts = [TargetStatus(*m[0]) for m in mine]
            retried = [x.retried for x in sts if x.retried is not None]  # Kafka forwards
            forwards.append((TargetStatus(sts[0].target, all(x.connected for x in sts),
                                          sum(x.queued for x in sts), sum(x.sent for x in sts),
                                          sum(x.undelivered for x in sts),
                                          sum(x.reconnects for x in sts),
                                          sum(retried) if retried else None),
                             next((m[1] for m in mine if m[1]), None)))
        self.merged_forwards = forwards

    @property
    def files(self) -> list[str]:
        return list(self.merged_files)

    def forward_status(self) -> list[Any]:
        return [f[0] for f in self.merged_forwards]

    def forward_errors(self) -> list[str | None]:
        return [f[1] for f in self.merged_forwards]

    def kernel_drops_now(self) -> int | None:
        return self.kernel_drops

    def per_worker(self) -> list[int]:
        """Packets received by each worker, in worker order."""
        return [sum(self.snapshots[k]["packets"].values()) for k in sorted(self.snapshots)]


class ForwardState:
    """A merged forward as :func:`heptool.net.metrics.listen_families` reads one."""

    def __init__(self, st: TargetStatus) -> None:
        self.st = st

    def status(self) -> TargetStatus:
        return self.st
