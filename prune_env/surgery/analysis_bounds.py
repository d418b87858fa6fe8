"""Bounds on the dependency-graph search, so that no model can take the machine down.

Torch-Pruning follows a channel through every reshape by expanding its index list by the
reshape's stride (a channel that becomes H*W flattened features owns H*W indices), one Python
object per index. In networks that reshape channels into windows or spatial tokens again and
again (Swin, MaxViT at 224x224) the lists multiply into billions of objects: memory grows past
any machine while no error is raised. The guard counts the indices every mapping produces and
the time spent, and raises :class:`AnalysisTooCostlyError` at the first bound crossed.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

from torch_pruning.dependency import index_mapping

from prune_env.errors import AnalysisTooCostlyError

#: Channel indices the search for one group may create (~100-200 bytes each in Torch-Pruning;
#: VGG-16's flatten at 224x224 needs 25,088, ViT-B/16's tokens about 150,000 per group). A
#: search that passes it has spent ~4 s creating them: MaxViT-T at 224 has 22 such groups.
MAX_INDICES = 1_000_000
#: Seconds the search for all groups may take.
MAX_SECONDS = 180.0


@contextlib.contextmanager
def bounded_group_search(
    max_indices: int | None = None, max_seconds: float | None = None, started: float | None = None
) -> Iterator[None]:
    """Within the block, Torch-Pruning's reshape index mapping raises
    :class:`AnalysisTooCostlyError` once its lists would pass ``max_indices`` in total or the
    search has run ``max_seconds`` since ``started`` (a ``time.monotonic()`` value; default: the
    block's start). Defaults: this module's bounds, read at call time. The error's ``bound``
    says which bound was crossed: "indices" or "seconds"."""
    max_indices = MAX_INDICES if max_indices is None else max_indices
    max_seconds = MAX_SECONDS if max_seconds is None else max_seconds
    start = time.monotonic() if started is None else started  # when the whole search began
    mapping = index_mapping._FlattenIndexMapping
    original = mapping.__call__
    created = 0

    def bounded(self, idxs):
        nonlocal created
        created += len(idxs) if self.reverse else len(idxs) * self._stride
        elapsed = time.monotonic() - start
        if created > max_indices or elapsed > max_seconds:
            what = f"{created:,} channel indices" if created > max_indices else f"{elapsed:.0f} s"
            raise too_costly(
                "indices" if created > max_indices else "seconds",
                f"finding the prunable groups stopped at {what}: Torch-Pruning follows each channel "
                f"through the model's reshapes with one index per flattened position (bounds: "
                f"{max_indices:,} indices, {max_seconds:.0f} s). Give smaller example_inputs (a lower "
                "resolution the model accepts, e.g. 64x64), or prune a part of the model",
            )
        return original(self, idxs)

    mapping.__call__ = bounded
    try:
        yield
    finally:
        mapping.__call__ = original


def too_costly(bound: str, message: str) -> AnalysisTooCostlyError:
    """The error, with ``bound`` ("indices": one group's search; "seconds": the whole search)."""
    return AnalysisTooCostlyError(message, bound)
