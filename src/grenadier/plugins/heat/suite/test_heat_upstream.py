"""Heat's own API tests (heat-tempest-plugin's gabbits), one pytest test per gabbi test.

Collected only when ``GRENADIER_SMOKE`` is ``upstream`` or ``all``. They run against the base
and the target in the smoke phases, and once more against the target in post-upgrade; the
runner compares each test's results on the base and on the target.
"""

from __future__ import annotations

import pytest

from grenadier.plugins.heat.suite import gabbi
from grenadier.plugins.heat.upstream.cases import Case

pytestmark = [pytest.mark.smoke, pytest.mark.post_upgrade]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "gabbi_case" in metafunc.fixturenames:
        cases = gabbi.session(metafunc.config).cases
        metafunc.parametrize("gabbi_case", cases, ids=[case.name for case in cases])


def test_gabbi(gabbi_case: Case, request: pytest.FixtureRequest) -> None:
    """The gabbi test passes against the running Heat (a known failure of this mode is skipped
    with its reason)."""
    assert isinstance(request.node, pytest.Item)
    result = gabbi.session(request.config).result(request.node, gabbi_case)
    if result.status == "skipped":
        pytest.skip(result.message)
    if result.status != "passed":
        pytest.fail(f"gabbi test {gabbi_case.file} #{gabbi_case.index} "
                    f"({gabbi_case.id}) {result.status}: {result.message}", pytrace=False)
