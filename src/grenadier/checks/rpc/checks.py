"""The ``rpc-contract`` check: each release's contract from its own Python, compared here."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from grenadier.checks.api import Check, CheckContext
from grenadier.checks.config.inventory import probed
from grenadier.checks.rpc import probe
from grenadier.checks.rpc.compare import contract_findings
from grenadier.checks.rpc.contract import Contract
from grenadier.model.findings import Finding
from grenadier.releases.release import Release

#: the probe's output, kept in the release's venv: a venv whose packages did not change is
#: never probed twice
CACHE_FILE = "grenadier-rpc-contract.json"


def probe_release(release: Release, log: Path | None = None) -> dict[str, Any]:
    """``probe.py``'s JSON for ``release``, from its cache in the venv or a probe run."""
    return probed(release, Path(probe.__file__), "RPC contract probe", (CACHE_FILE, "contract"),
                  log=log, fresh=lambda contract: contract.get("format") == probe.FORMAT)


def load_contracts(base: Release, target: Release, log: Path | None = None
                   ) -> tuple[Contract, Contract]:
    """Both releases' contracts; the two probes run side by side (each imports Heat: ~2 s)."""
    with ThreadPoolExecutor(2, thread_name_prefix="rpc-probe") as pool:
        futures = [pool.submit(probe_release, release, log) for release in (base, target)]
        data = [future.result() for future in futures]
    return (Contract.from_probe(base.label, data[0]), Contract.from_probe(target.label, data[1]))


def rpc_contract(ctx: CheckContext) -> list[Finding]:
    """Every RPC message one release sends binds to the other's endpoints (rolling upgrades).

    During a rolling upgrade the old API and the old engines send messages to the new engines,
    and new and old engines to each other. A keyword argument renamed or removed, a method
    gone, an RPC API version lowered or a versioned object changed without a version bump
    breaks only there, at random, and a cold upgrade never shows it. Each release's own Python
    lists what its clients send (called against a recording transport) and what its endpoints
    accept; every message is bound as oslo.messaging's dispatcher binds it. No bus is needed.
    """
    log = ctx.deployment.logs / "rpc-contract.log"
    base, target = load_contracts(ctx.base, ctx.target, log)
    ctx.facts["rpc_contract"] = {
        "base": {"messages": len(base.messages), "endpoints": {
            api: ep.version for api, ep in base.endpoints.items()}},
        "target": {"messages": len(target.messages), "endpoints": {
            api: ep.version for api, ep in target.endpoints.items()}}}
    return contract_findings(base, target)


RPC_CHECKS = [Check("rpc-contract", "pre-migration", rpc_contract, concurrent=True,
                    rolling=True)]
