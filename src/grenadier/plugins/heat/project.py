"""Heat as the project under test: heat.conf, db_sync, the single-process launcher."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import httpx

from grenadier.errors import EnvironmentProblem
from grenadier.execute import ExecuteRequest, Outcome, run
from grenadier.plugins.api import Deployment, Project
from grenadier.plugins.heat import conf
from grenadier.releases import Release
from grenadier.services import ServiceSpec

LAUNCHER = Path(__file__).with_name("launcher.py")
SUITE = Path(__file__).with_name("suite")
SECRETS = "secrets.json"
DB_SYNC_TIMEOUT = 900.0


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` readable by its owner only: it may hold a secret."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


def _get(client: httpx.Client, url: str, **kwargs: Any) -> Any:
    response = client.get(url, **kwargs)
    if response.status_code >= 400:
        raise EnvironmentProblem(f"Heat API GET {url} answered {response.status_code}: "
                                 f"{response.text[:200]}")
    return response.json()


class HeatProject(Project):
    name = "heat"
    package = "openstack-heat"

    def _identity(self, deployment: Deployment) -> dict[str, str]:
        # Created once per run and kept: resumed runs must talk to the same project.
        path = deployment.etc / SECRETS
        if path.is_file():
            data: dict[str, str] = json.loads(path.read_text(encoding="utf-8"))
            return data
        data = {"project": uuid.uuid4().hex, "user": "grenadier",
                "auth_encryption_key": conf.new_auth_encryption_key()}
        _write_private(path, json.dumps(data))
        return data

    def configure(self, release: Release, deployment: Deployment) -> list[Path]:
        ident = self._identity(deployment)
        etc = deployment.etc
        # The deployer's copy of the paste file, as /etc/heat/api-paste.ini: kept across the upgrade
        paste = etc / "api-paste.ini"
        paste.write_text(conf.api_paste_ini(release.venv).read_text(encoding="utf-8"),
                         encoding="utf-8")
        token = etc / "token.json"
        token.write_text(conf.render_token(deployment.port, ident["project"], ident["user"]),
                         encoding="utf-8")
        policy = etc / "policy.yaml"
        policy.write_text(conf.render_policy(), encoding="utf-8")
        params = conf.HeatConfParams(
            host="grenadier-engine", port=deployment.port, db_url=deployment.db.url(),
            log_file=(deployment.logs / "heat.log").resolve(), api_paste_config=paste.resolve(),
            token_file=token.resolve(), auth_encryption_key=ident["auth_encryption_key"],
            policy_file=policy.resolve(),
        )
        _write_private(etc / "heat.conf", conf.render_heat_conf(params))
        return self.config_files(deployment)

    def config_files(self, deployment: Deployment) -> list[Path]:
        return [deployment.etc / "heat.conf", *deployment.extra_config]

    def _config_args(self, deployment: Deployment) -> list[str]:
        return [arg for path in self.config_files(deployment)
                for arg in ("--config-file", str(path))]

    def db_sync(self, release: Release, deployment: Deployment) -> Outcome:
        cmd = [str(release.bin("heat-manage")), *self._config_args(deployment),
               "--log-file", str(deployment.logs / f"heat-manage-{release.version}.log"),
               "db_sync"]
        log = deployment.logs / f"db_sync-{release.version}.log"
        return run(ExecuteRequest(cmd, timeout=DB_SYNC_TIMEOUT, log=log))

    def db_version(self, release: Release, deployment: Deployment) -> Outcome:
        cmd = [str(release.bin("heat-manage")), *self._config_args(deployment),
               "--log-file", str(deployment.logs / f"heat-manage-{release.version}.log"),
               "db_version"]
        return run(ExecuteRequest(cmd, timeout=120))

    def services(self, release: Release, deployment: Deployment, role: str) -> list[ServiceSpec]:
        url = self.endpoint(deployment)["url"]
        cmd = [str(release.python), str(LAUNCHER), *self._config_args(deployment),
               "--log-file", str(deployment.logs / f"heat-{role}.log")]

        def ready() -> bool:
            return httpx.get(f"{url}/", timeout=2).status_code < 500

        return [ServiceSpec(name=f"heat-{role}", cmd=cmd, ready=ready, ready_timeout=120,
                            stop_timeout=30, log=deployment.logs / f"heat-{role}.stdout.log")]

    def endpoint(self, deployment: Deployment) -> dict[str, object]:
        ident = self._identity(deployment)
        return {"url": f"http://127.0.0.1:{deployment.port}", "project": ident["project"],
                "user": ident["user"]}

    def inventory(self, deployment: Deployment) -> dict[str, Any]:
        """Every stack (nested ones included) with its status, outputs and resources."""
        ep = self.endpoint(deployment)
        base = f"{ep['url']}/v1/{ep['project']}"
        headers = {"X-Auth-User": str(ep["user"]), "X-Auth-Project": str(ep["project"])}
        with httpx.Client(headers=headers, timeout=60) as client:
            listed = _get(client, f"{base}/stacks", params={"show_nested": "true"})["stacks"]
            stacks = []
            for stack in sorted(listed, key=lambda s: s["stack_name"]):
                path = f"{base}/stacks/{stack['stack_name']}/{stack['id']}"
                resources = _get(client, f"{path}/resources")["resources"]
                stacks.append({
                    "id": stack["id"], "name": stack["stack_name"],
                    "status": stack["stack_status"], "parent": stack.get("parent"),
                    "resources": sorted(
                        ({"name": r["resource_name"], "type": r["resource_type"],
                          "status": r["resource_status"],
                          "physical_id": r.get("physical_resource_id")} for r in resources),
                        key=lambda r: str(r["name"])),
                })
        return {"stacks": stacks}

    def test_paths(self) -> list[Path]:
        return [SUITE]
