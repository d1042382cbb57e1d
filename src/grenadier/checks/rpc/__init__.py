"""The RPC contract between two releases: ``probe.py`` beside this file is a standalone script
run with a release's Python; ``contract.py`` binds messages as oslo.messaging dispatches them;
``compare.py`` turns the differences into findings of the ``rpc-contract`` check."""

from __future__ import annotations

from grenadier.checks.rpc.checks import RPC_CHECKS, rpc_contract

__all__ = ["RPC_CHECKS", "rpc_contract"]
