"""The float64 reference itself, checked against high-precision numerical derivatives of s(x).

If a formula in reference.py (or in DESIGN.md's table) were wrong, this is where it shows.
"""

import mpmath as mp
import numpy as np
import pytest

from reference import ALPHA_SURROGATES, KINKED, SURROGATES, d_and_d2, surrogate_value

POINTS = [-8.0, -3.5, -1.0, -0.3, -0.01, 0.02, 0.4, 1.3, 2.5, 7.0]


@pytest.mark.parametrize("name", [s for s in SURROGATES if s != "relu"])
@pytest.mark.parametrize("alpha", [None, 0.37])
def test_reference_matches_numerical_derivatives(name, alpha):
    if alpha is not None and name not in ALPHA_SURROGATES:
        pytest.skip("takes no alpha")
    mp.mp.dps = 40
    d, d2 = d_and_d2(name, np.array(POINTS), alpha)
    for i, x in enumerate(POINTS):
        if name in KINKED and abs(x) < 0.05:
            continue  # the one-sided pieces meet at 0; stay on one side
        f = lambda t: surrogate_value(name, t, alpha)  # noqa: E731
        num_d = float(mp.diff(f, mp.mpf(x)))
        num_d2 = float(mp.diff(f, mp.mpf(x), 2))
        assert d[i] == pytest.approx(num_d, rel=1e-10, abs=1e-13), (name, x)
        assert d2[i] == pytest.approx(num_d2, rel=1e-9, abs=1e-12), (name, x)
