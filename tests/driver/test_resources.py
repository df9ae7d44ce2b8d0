"""What a run holds, against what a joined cluster has free (the real cluster is in
tests/system/test_held_cpus.py and test_gpu_layouts.py)."""

from __future__ import annotations

import pytest

from evoforge.driver.resources import ClusterView, check_free
from evoforge.errors import EvoforgeError


def view(free_cpus: float, free_gpus: float) -> ClusterView:
    return ClusterView("cluster at 10.0.0.1:6379", 4, 2, [2], free_cpus, free_gpus, True, False)


def test_what_fits_in_the_free_resources_passes():
    check_free(view(2, 1), 2, 1, wait_s=0)


@pytest.mark.parametrize(
    "free_cpus, free_gpus, message",
    [
        (1, 2, "need 2 CPU slots (1 of 4 free) on the cluster at 10.0.0.1:6379"),
        (4, 0.5, "need 1 GPUs (0.5 of 2 free)"),
        (0, 0, "need 2 CPU slots (0 of 4 free) and 1 GPUs (0 of 2 free)"),
    ],
)
def test_what_does_not_fit_names_what_is_missing_and_how_to_free_it(free_cpus, free_gpus, message):
    with pytest.raises(EvoforgeError) as e:
        check_free(view(free_cpus, free_gpus), 2, 1, wait_s=0)
    assert message in str(e.value) and "ray list actors" in str(e.value)
    assert "\n" not in str(e.value)
