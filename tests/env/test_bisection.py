"""largest_fitting_ratio: the one bisection behind max_keep_ratio, the uniform ratio that fits a
wrapper's budget and the search's common scale factor."""

import pytest

from prune_env.bisection import largest_fitting_ratio


@pytest.mark.parametrize("edge", [0.0371, 0.5, 0.999])
def test_finds_the_edge_from_below_within_the_step_resolution(edge):
    found = largest_fitting_ratio(lambda r: r <= edge, steps=20)
    assert found <= edge < found + 2**-20


def test_returns_the_upper_bound_when_it_fits_and_zero_when_nothing_does():
    assert largest_fitting_ratio(lambda r: True) == 1.0
    assert largest_fitting_ratio(lambda r: True, upper=7.5) == 7.5
    assert largest_fitting_ratio(lambda r: r <= 0.0) == 0.0


def test_an_upper_bound_above_one_bisects_a_scale_factor():
    upper = 12.0
    found = largest_fitting_ratio(lambda s: s <= 3.3, steps=30, upper=upper)
    assert found <= 3.3 < found + upper * 2**-30
