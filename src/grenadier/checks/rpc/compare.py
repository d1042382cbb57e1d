"""Two releases' RPC contracts side by side: the findings of the ``rpc-contract`` check.

Both directions of a rolling upgrade are bound. Old to new (the old API and the old engines
calling new engines: every upgrade that keeps the old API in front of new engines) is an error.
New to old (new engines calling old engines while both serve one bus) is a warning: Heat's
rolling-upgrade guide gives the new release its own RabbitMQ vhost, so that a new engine never
calls an old one; a deployment that shares the bus (as ``--mode rolling`` does) breaks on it.
A message that already fails within its own release is Heat's own matter, not the upgrade's:
it is left out.
"""

from __future__ import annotations

from collections.abc import Iterable

from grenadier.checks.rpc.contract import (
    Contract,
    Endpoint,
    Message,
    ObjectInfo,
    Problem,
    dispatch,
    version_lower,
)
from grenadier.model.findings import Finding

CHECK = "rpc-contract"
_REMEDY = {
    "unexpected-argument": "keep accepting the old keyword in the endpoint method (as an alias "
                           "with a default), or bump the RPC API version and keep serving the "
                           "old signature for the old version",
    "missing-argument": "give the new argument a default, so that a message from the old "
                        "release still binds, or bump the RPC API version",
    "no-such-method": "keep the method (deprecated) for one release, or bump the RPC API "
                      "version's major number with an upgrade note",
    "unsupported-version": "keep the endpoint's RPC API version at least the one the other "
                           "release sends; a version going down breaks every such message",
}


def _signature_text(endpoint: Endpoint, method: str) -> str:
    params = endpoint.methods.get(method)
    if params is None:
        return f"{endpoint.name} has no {method}()"
    shown = ", ".join(("**" if p.kind == "VAR_KEYWORD" else "*" if p.kind == "VAR_POSITIONAL"
                       else "") + p.name + ("=..." if p.default else "") for p in params)
    return f"{endpoint.name}.{method}({shown}), RPC API {endpoint.version or 'any'}"


def _message_finding(message: Message, problem: Problem, sender: Contract, receiver: Contract,
                     old_to_new: bool) -> Finding:
    endpoint = receiver.endpoints.get(message.api)
    args = ", ".join(message.kwargs)
    when = "" if old_to_new else " (only while new and old engines share one message bus)"
    return Finding(
        CHECK, "error" if old_to_new else "warning",
        f"{message.api} RPC {message.method}: {receiver.release} rejects what {sender.release} "
        f"sends: {problem.detail}",
        where=f"{sender.release} {message.via} -> {receiver.release} "
              f"{endpoint.name if endpoint else message.api}.{message.method}",
        expected=f"{receiver.release} binds every {message.api} message {sender.release} sends "
                 f"(endpoint.method(ctxt, **kwargs), as oslo.messaging dispatches it){when}",
        found=f"{message.kind} {message.method}({args}) at version {message.version}; "
              + (_signature_text(endpoint, message.method) if endpoint else "no endpoint"),
        remedy=_REMEDY.get(problem.kind, "make the endpoint accept the old release's message"),
        kind=problem.kind)


def message_findings(sender: Contract, receiver: Contract, *, old_to_new: bool
                     ) -> list[Finding]:
    """Each message of ``sender`` that ``receiver``'s endpoints cannot dispatch."""
    found: list[Finding] = []
    for message in sender.messages:
        problem = dispatch(receiver.endpoints.get(message.api), message)
        if problem is None or dispatch(sender.endpoints.get(message.api), message) is not None:
            continue
        found.append(_message_finding(message, problem, sender, receiver, old_to_new))
    return found


def endpoint_findings(base: Contract, target: Contract) -> list[Finding]:
    """RPC API versions that went down; public endpoint methods that vanished unsent."""
    found: list[Finding] = []
    sent = {(m.api, m.method) for m in base.messages}
    for api, old in sorted(base.endpoints.items()):
        new = target.endpoints.get(api)
        if new is None:
            found.append(Finding(CHECK, "error", f"the {api} RPC endpoint is gone",
                                 where=old.name, expected=f"{target.release} serves it",
                                 found="no such endpoint", kind="no-endpoint"))
            continue
        if version_lower(new.version, old.version):
            found.append(Finding(
                CHECK, "error", f"{api} RPC API version lowered: {old.version} -> {new.version}",
                where=new.name, expected=f"at least {old.version}", found=str(new.version),
                remedy=_REMEDY["unsupported-version"], kind="version-lowered"))
        for method in sorted(set(old.methods) - set(new.methods) - {m for a, m in sent
                                                                     if a == api}):
            found.append(Finding(
                CHECK, "warning", f"{api} RPC method {method}() removed from {new.name}",
                where=new.name, expected=f"{method}() kept while a client may still call it",
                found=f"{base.release} has it, {target.release} does not; no {base.release} "
                      "client sends it", kind="method-removed"))
    return found


def _object_findings(name: str, old: ObjectInfo, new: ObjectInfo | None, target: str
                     ) -> Iterable[Finding]:
    if new is None:
        yield Finding(CHECK, "warning", f"versioned object {name} removed",
                      expected=f"{target} still declares {name} {old.version}",
                      found="absent", kind="object-removed")
        return
    where = f"heat.objects {name}"
    if version_lower(new.version, old.version):
        yield Finding(CHECK, "error", f"versioned object {name} version lowered: "
                      f"{old.version} -> {new.version}", where=where,
                      expected=f"at least {old.version}", found=new.version,
                      kind="object-version-lowered")
    removed = sorted(set(old.fields) - set(new.fields))
    bumped = version_lower(old.version, new.version)
    if removed and not (bumped and new.compat):
        why = "without a version bump" if not bumped else "without obj_make_compatible"
        yield Finding(CHECK, "error", f"versioned object {name}: field(s) {', '.join(removed)} "
                      f"removed {why}", where=where,
                      expected="a new version whose obj_make_compatible serves the old one",
                      found=f"{old.version} -> {new.version}, compat code: "
                            f"{'yes' if new.compat else 'no'}",
                      remedy="keep the field, or bump the object's version and backport in "
                             "obj_make_compatible", kind="object-field-removed")
    changed = sorted(f for f in set(old.fields) & set(new.fields) if old.fields[f] != new.fields[f])
    added = sorted(set(new.fields) - set(old.fields))
    if (changed or added) and not bumped:
        detail = "; ".join([*(f"{f}: {old.fields[f]} -> {new.fields[f]}" for f in changed),
                            *(f"{f} added" for f in added)])
        yield Finding(CHECK, "warning", f"versioned object {name} changed without a version "
                      f"bump: {detail}", where=where, expected="a version bump",
                      found=f"version {new.version} in both", kind="object-changed")


def object_findings(base: Contract, target: Contract) -> list[Finding]:
    """Versioned objects of ``heat.objects`` compared, base -> target."""
    return [finding for name, old in sorted(base.objects.items())
            for finding in _object_findings(name, old, target.objects.get(name), target.release)]


def skipped_findings(contract: Contract) -> list[Finding]:
    return [Finding(CHECK, "warning", f"{name} of {contract.release} could not be called "
                    "against the recording transport: its messages are not checked",
                    where=name, found=why, kind="not-enumerated")
            for name, why in sorted(contract.skipped.items())]


def contract_findings(base: Contract, target: Contract) -> list[Finding]:
    """Everything the ``rpc-contract`` check reports for base -> target."""
    return [*message_findings(base, target, old_to_new=True),
            *message_findings(target, base, old_to_new=False),
            *endpoint_findings(base, target), *object_findings(base, target),
            *skipped_findings(base), *skipped_findings(target)]
