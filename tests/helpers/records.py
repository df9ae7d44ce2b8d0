"""Typed records for unit tests of the store and the pair filters."""

from __future__ import annotations

from evoforge.storage.records import Pair


def sampled_pair(chosen: str, rejected: str, id_: str = "t", edit_distance: int = 0) -> Pair:
    """A sampled pair of task "t" (chosen scored 1, rejected 0)."""
    return Pair(
        id=id_,
        task_id="t",
        source="sampled",
        prompt=[],
        chosen=chosen,
        rejected=rejected,
        chosen_score=1.0,
        rejected_score=0.0,
        edit_distance=edit_distance,
    )
