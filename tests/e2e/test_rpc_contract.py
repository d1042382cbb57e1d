"""The rpc-contract check on real releases: quiet on 26.0.2 -> 27.0.1, and fires in the default
all-in-one run on a crafted target (a 26.0.2 tree) whose engine renamed ``list_stack_resources``'
keyword ``with_detail`` (its own client too, no RPC version bump)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import BASE, Run, grenadier, heat_processes, tree_copy
from tests.helpers import crafted

CHECK = "rpc-contract"


def contract_findings(run: Run, step: str = "upgrade") -> list[dict[str, str]]:
    findings: list[dict[str, str]] = run.steps()[step]["findings"]  # type: ignore[assignment]
    return [f for f in findings if f["check"] == CHECK]


@pytest.fixture(scope="module")
def renamed_tree(sdist_26: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    tree = tree_copy(sdist_26, tmp_path_factory.mktemp("renamed"))
    crafted.patch_rename_rpc_kwarg(tree)
    return tree


def test_pristine_pair_passes_the_contract_check(default_run: Run) -> None:
    assert default_run.returncode == 0, default_run.err[-3000:]
    messages = default_run.steps()["upgrade"]["messages"]
    assert any(m.startswith(f"check {CHECK}: ok") for m in messages), messages  # type: ignore[union-attr]
    assert [f for f in contract_findings(default_run) if f["severity"] == "error"] == []


def test_renamed_keyword_fails_the_default_run_at_the_upgrade_step(
        renamed_tree: Path, workdir: Path, cache_dir: Path) -> None:
    run = grenadier("run", "--base", BASE, "--target", str(renamed_tree), workdir=workdir,
                    cache_dir=cache_dir)
    print(run.err)  # the console, for -rP
    assert run.returncode == 1, run.out[-3000:] + run.err[-3000:]
    status = run.status()
    assert status["upgrade"] == "failed"
    [error] = [f for f in contract_findings(run) if f["severity"] == "error"]
    assert error["kind"] == "unexpected-argument"
    assert "list_stack_resources" in error["what"]
    assert "'with_detail'" in error["what"]
    assert "EngineService.list_stack_resources" in error["where"]
    # the console names the check, the method and the argument
    assert f"{CHECK}: engine RPC list_stack_resources" in run.err
    assert "'with_detail'" in run.err
    assert heat_processes(run.run_dir) == []


def test_without_the_check_the_cold_run_cannot_see_the_break(
        renamed_tree: Path, workdir: Path, cache_dir: Path) -> None:
    # the target's own API and engines agree with each other: a cold upgrade passes
    run = grenadier("run", "--base", BASE, "--target", str(renamed_tree), "--skip-checks",
                    CHECK, workdir=workdir, cache_dir=cache_dir)
    assert run.returncode == 0, run.out[-3000:] + run.err[-3000:]
    assert set(run.status().values()) == {"passed"}
    assert contract_findings(run) == []


needs_rabbit = pytest.mark.skipif(
    not Path("/usr/lib/rabbitmq/bin/rabbitmq-server").is_file()
    and not Path("/usr/sbin/rabbitmq-server").is_file(),
    reason="needs rabbitmq-server (apt-get install rabbitmq-server)")


@needs_rabbit
def test_renamed_keyword_fails_the_rolling_run_at_the_held_window(
        renamed_tree: Path, workdir: Path, cache_dir: Path) -> None:
    # without the static check: the held window alone must catch it
    run = grenadier("run", "--base", BASE, "--target", str(renamed_tree), "--bus", "rabbit",
                    "--topology", "split", "--engines", "2", "--mode", "rolling",
                    "--skip-checks", CHECK, "--workload-rate", "3", "--workload-min-ops", "30",
                    # operations the broken target refuses fail after 30 s, not 180
                    "--workload-op-timeout", "30", workdir=workdir, cache_dir=cache_dir,
                    env={"GRENADIER_OPERATION_SECONDS": "30"})
    step = run.steps().get("rolling-upgrade", {})
    print("\n".join(step.get("messages", [])))  # type: ignore[arg-type]
    assert run.returncode == 1, run.out[-3000:] + run.err[-3000:]
    assert run.status()["rolling-upgrade"] == "failed"
    findings: list[dict[str, str]] = step["findings"]  # type: ignore[index]
    held = [f for f in findings if f["check"] == "held-window" and f["severity"] == "error"]
    only = [f for f in held if f["kind"] == "held-target-only"]
    # the old API lists an old stack's resources with with_detail; the new engines refuse it
    assert any(f["what"].startswith("resources of old stack ") for f in only), held
    assert any("with_detail" in f["found"] for f in only), only
    assert all(f["where"].startswith("step held-target-only") for f in only)
    assert contract_findings(run, "rolling-upgrade") == []  # the check was skipped
    assert heat_processes(run.run_dir) == []
