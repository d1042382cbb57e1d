"""Crafted broken Heat releases, built from a real Heat source tree, and crafted Heat data.

Each ``patch_*`` function takes an unpacked Heat source tree (e.g. the openstack-heat 26.0.2
sdist) and changes it in place, so that the tree can be given as ``grenadier run --target
TREE`` or installed with :func:`install_tree`. :func:`populate` fills a Heat database with
stacks by SQL, run with a release venv's python (grenadier itself never imports SQLAlchemy).
"""

from __future__ import annotations

import ast
import json
import re
import shutil
import sys
import tarfile
from pathlib import Path

from packaging.version import Version

from grenadier.execute import ExecuteRequest, run
from grenadier.host import free_port
from grenadier.plugins.heat.project import HeatProject
from grenadier.project.api import Deployment
from grenadier.releases import Release
from grenadier.releases.constraints import series_of
from grenadier.services.db import Database

SDIST = "openstack-heat=={version}"
MIGRATIONS = Path("heat/db/migrations/versions")
MODELS = Path("heat/db/models.py")

MIGRATION_TEMPLATE = '''"""{title}

Revision ID: {revision}
Revises: {down_revision}
Create Date: 2026-11-26
"""

from alembic import op
import sqlalchemy as sa


revision = '{revision}'
down_revision = '{down_revision}'
branch_labels = None
depends_on = None


def upgrade():
{body}


def downgrade():
    pass
'''


# --- getting a tree -------------------------------------------------------------------------
def download_sdist(python: Path, version: str, dest: Path) -> Path:
    """The openstack-heat sdist of ``version``, downloaded with ``python -m pip``."""
    dest.mkdir(parents=True, exist_ok=True)
    found = sorted(dest.glob(f"openstack_heat-{version}.tar.gz"))
    if found:
        return found[0]
    cmd = [str(python), "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
           SDIST.format(version=version), "-d", str(dest)]
    run(ExecuteRequest(cmd, timeout=300)).assert_success(f"downloading the {version} sdist")
    return sorted(dest.glob(f"openstack_heat-{version}.tar.gz"))[0]


def unpack(sdist: Path, dest: Path) -> Path:
    """A fresh copy of the source tree in ``sdist``, at ``dest`` (replaced if it exists)."""
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    with tarfile.open(sdist) as archive:
        archive.extractall(dest, filter="data")
    (top,) = list(dest.iterdir())
    return top


def install_tree(tree: Path, venv: Path, version: str) -> Path:
    """Install ``tree`` with its database drivers into a new uv venv; return its python."""
    uv = shutil.which("uv") or str(Path(sys.executable).with_name("uv"))
    shutil.rmtree(venv, ignore_errors=True)
    run(ExecuteRequest([uv, "venv", "-q", "--seed", "--python", sys.executable, str(venv)],
                       timeout=300)).assert_success(f"creating {venv}")
    python = venv / "bin" / "python"
    # pbr reads the version from PKG-INFO; PBR_VERSION covers a tree without it (and only
    # then: it would also rewrite the version of every other pbr package built from source)
    env = {"VIRTUAL_ENV": str(venv)}
    if not (tree / "PKG-INFO").is_file():
        env["PBR_VERSION"] = version
    # as grenadier installs a tree: with the upper-constraints of its version's series
    series = series_of("openstack-heat", Version(version).major)
    pins: list[str] = []
    if series is not None:
        constraints = venv.with_name(venv.name + "-constraints.txt")
        constraints.write_text(series.text, encoding="utf-8")
        pins = ["-c", str(constraints), *series.requirements]
    # --refresh-package: never a wheel uv built from another tree at the same path
    cmd = [uv, "pip", "install", "-q", "--python", str(python), "--refresh-package",
           "openstack-heat", str(tree), "psycopg2-binary", "PyMySQL", *pins]
    run(ExecuteRequest(cmd, env=env, timeout=900)).assert_success(f"installing {tree}")
    return python


# --- patches --------------------------------------------------------------------------------
def migration_head(tree: Path) -> str:
    """The alembic head of the tree's migrations, read from the scripts (heat not imported)."""
    revisions: dict[str, str | None] = {}
    for script in (tree / MIGRATIONS).glob("*.py"):
        values: dict[str, str | None] = {}
        for node in ast.parse(script.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        values[target.id] = node.value.value
        if values.get("revision"):
            revisions[str(values["revision"])] = values.get("down_revision")
    heads = set(revisions) - {down for down in revisions.values() if down}
    if len(heads) != 1:
        raise ValueError(f"{tree} has {len(heads)} migration heads: {sorted(heads)}")
    return heads.pop()


def _changed(tree: Path, new_file: Path | None = None) -> None:
    """Make a patched tree build and install like a changed checkout would.

    Without git, pbr/setuptools take the non-package files (the migrations directory has no
    __init__.py) from the sdist's SOURCES.txt, so a new script is listed there. uv caches a
    directory's built wheel by the mtime of setup.cfg/setup.py/pyproject.toml (tar keeps the
    sdist's mtimes), so those are touched or a stale build of another patch is reused.
    """
    if new_file is not None:
        for sources in tree.glob("*.egg-info/SOURCES.txt"):
            lines = sources.read_text(encoding="utf-8").splitlines()
            lines.append(new_file.relative_to(tree).as_posix())
            sources.write_text("\n".join(sorted(set(lines))) + "\n", encoding="utf-8")
    for name in ("setup.cfg", "setup.py", "pyproject.toml"):
        if (tree / name).exists():
            (tree / name).touch()


def add_migration(tree: Path, revision: str, title: str, body: str) -> Path:
    """A new migration after the tree's head whose ``upgrade()`` runs ``body`` (indented)."""
    down = migration_head(tree)
    indented = "\n".join(f"    {line}" if line else "" for line in body.strip().splitlines())
    slug = re.sub(r"\W+", "_", title.lower()).strip("_")
    path = tree / MIGRATIONS / f"{revision}_{slug}.py"
    path.write_text(MIGRATION_TEMPLATE.format(title=title, revision=revision,
                                              down_revision=down, body=indented),
                    encoding="utf-8")
    _changed(tree, path)
    return path


def patch_delete_rows(tree: Path, table: str = "event", where: str = "",
                      revision: str = "0de1e7e5ba5e") -> Path:
    """(i) a migration that deletes rows of ``table`` (all of them unless ``where``)."""
    sql = f"DELETE FROM {table}" + (f" WHERE {where}" if where else "")
    return add_migration(tree, revision, f"Prune {table} rows", f'op.execute("{sql}")')


def patch_model_column(tree: Path, table: str = "stack", column: str = "grenadier_drift",
                       type_: str = "sqlalchemy.String(36)") -> Path:
    """(ii) a column in the models of ``table`` that no migration creates."""
    path = tree / MODELS
    text = path.read_text(encoding="utf-8")
    anchor = f"    __tablename__ = '{table}'\n"
    if anchor not in text:
        raise ValueError(f"no model with __tablename__ {table!r} in {path}")
    line = f"    {column} = sqlalchemy.Column({type_}, nullable=True)\n"
    path.write_text(text.replace(anchor, anchor + line, 1), encoding="utf-8")
    _changed(tree)
    return path


def patch_raising_migration(tree: Path, message: str = "crafted migration failure",
                            revision: str = "0badc0ffee00") -> Path:
    """(iii) a migration that adds a column, then raises (as a buggy data migration would)."""
    body = ("op.add_column('stack', sa.Column('grenadier_half_done', sa.String(36)))\n"
            f"raise RuntimeError({message!r})")
    return add_migration(tree, revision, "Crafted raising migration", body)


RESOURCES_API = Path("heat/api/openstack/v1/resources.py")


def patch_mark_unhealthy_reason(tree: Path) -> Path:
    """(iv) an API regression the built-in suite does not drive: ``PATCH`` of a resource (mark
    unhealthy) no longer accepts ``resource_status_reason``, as a renamed key would do; Heat
    answers 400 "Invalid keys in resource mark unhealthy"."""
    path = tree / RESOURCES_API
    text = path.read_text(encoding="utf-8")
    old = "'mark_unhealthy', rpc_api.RES_STATUS_DATA)"
    if old not in text:
        raise ValueError(f"no mark_unhealthy keys {old!r} in {path}")
    path.write_text(text.replace(old, "'mark_unhealthy', 'status_reason')", 1),
                    encoding="utf-8")
    _changed(tree)
    return path


CONFIG = Path("heat/common/config.py")
RESOURCES = Path("heat/engine/resources/openstack/heat")
#: what the target of :func:`patch_required_option` says as it refuses to start
REQUIRED_MESSAGE = "heat.conf misconfigured, [DEFAULT] {name} must be set"


def patch_required_option(tree: Path, name: str = "grenadier_required") -> Path:
    """(v) a new option the services refuse to start without, as a startup sanity check
    (heat-manage does not run it: the database still migrates)."""
    path = tree / CONFIG
    text = path.read_text(encoding="utf-8")
    anchor = "def startup_sanity_check():\n"
    if anchor not in text:
        raise ValueError(f"no startup_sanity_check in {path}")
    check = (f"    if not cfg.CONF.{name}:\n"
             f"        raise exception.Error({REQUIRED_MESSAGE.format(name=name)!r})\n")
    text = text.replace(anchor, anchor + check, 1)
    text += f"\n\ncfg.CONF.register_opt(cfg.StrOpt({name!r}, help='crafted: must be set'))\n"
    path.write_text(text, encoding="utf-8")
    _changed(tree)
    return path


def patch_drop_resource_type(tree: Path, module: str = "random_string",
                             type_name: str = "OS::Heat::RandomString") -> Path:
    """(vi) a resource type the old stacks use is gone from the target."""
    path = tree / RESOURCES / f"{module}.py"
    text = path.read_text(encoding="utf-8")
    entry = f"        '{type_name}':"
    if entry not in text:
        raise ValueError(f"{type_name} is not mapped in {path}")
    lines = [line for line in text.splitlines() if not line.startswith(entry)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    _changed(tree)
    return path


def _replace_once(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    if text.count(old) != 1:
        raise ValueError(f"{path}: expected exactly one {old!r}, found {text.count(old)}")
    path.write_text(text.replace(old, new), encoding="utf-8")


def patch_rename_rpc_kwarg(tree: Path) -> list[Path]:
    """(vii) the engine's ``list_stack_resources`` keyword ``with_detail`` renamed ``detailed``,
    on both sides of the release (its EngineService and its own EngineClient), with no RPC API
    version bump: the release works alone, and rejects what the old API sends."""
    service, client = tree / "heat/engine/service.py", tree / "heat/rpc/client.py"
    _replace_once(service, "nested_depth=0, with_detail=False,", "nested_depth=0, detailed=False,")
    _replace_once(service, "api.format_stack_resource(resource, detail=with_detail)",
                  "api.format_stack_resource(resource, detail=detailed)")
    _replace_once(client, "with_detail=with_detail,", "detailed=with_detail,")
    _changed(tree)
    return [service, client]


# --- crafted data ---------------------------------------------------------------------------
POPULATE = r'''
import datetime, json, sys, uuid
import sqlalchemy as sa

url, stacks, start = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
meta = sa.MetaData()
meta.reflect(engine)
t = meta.tables
now = datetime.datetime(2026, 11, 26, 12, 0, 0)
template = json.dumps({"heat_template_version": "2021-04-16", "resources": {
    f"r{i}": {"type": "OS::Heat::RandomString", "properties": {"length": 8 + i}}
    for i in range(5)}})
rows = {name: [] for name in ("raw_template", "user_creds", "stack", "resource_properties_data",
                              "resource", "resource_data", "event", "stack_tag", "sync_point",
                              "snapshot")}
for n in range(start, start + stacks):
    sid = str(uuid.UUID(int=n + 1))
    traversal = str(uuid.UUID(int=10**9 + n))
    rows["raw_template"].append({"id": n + 1, "template": template, "files": "{}",
                                 "environment": json.dumps({"parameters": {"n": n}}),
                                 "created_at": now})
    rows["user_creds"].append({"id": n + 1, "username": f"user{n}", "password": "secret",
                               "tenant": "demo", "tenant_id": "p" * 32, "created_at": now})
    rows["stack"].append({"id": sid, "name": f"stack-{n}", "raw_template_id": n + 1,
                          "user_creds_id": n + 1, "username": f"user{n}", "tenant": "p" * 32,
                          "action": "CREATE", "status": "COMPLETE", "status_reason": "done",
                          "disable_rollback": True, "convergence": True, "timeout": 60,
                          "current_traversal": traversal, "nested_depth": 0,
                          "current_deps": json.dumps({"edges": []}), "created_at": now})
    for r in range(5):
        rid = n * 5 + r + 1
        rows["resource_properties_data"].append({"id": rid, "encrypted": False,
                                                 "data": json.dumps({"length": 8 + r}),
                                                 "created_at": now})
        rows["resource"].append({"id": rid, "uuid": str(uuid.UUID(int=2 * 10**9 + rid)),
                                 "name": f"r{r}", "stack_id": sid, "action": "CREATE",
                                 "status": "COMPLETE", "status_reason": "state changed",
                                 "nova_instance": None, "rsrc_prop_data_id": rid,
                                 "current_template_id": n + 1, "atomic_key": 1,
                                 "engine_id": None, "needed_by": "[]", "requires": "[]",
                                 "replaced_by": None, "replaces": None, "root_stack_id": sid,
                                 "properties_data_encrypted": False, "created_at": now})
        rows["resource_data"].append({"id": rid, "resource_id": rid, "key": "value",
                                      "value": uuid.UUID(int=rid).hex, "redact": False,
                                      "decrypt_method": None, "created_at": now})
        rows["sync_point"].append({"entity_id": str(uuid.UUID(int=3 * 10**9 + rid)),
                                   "traversal_id": traversal, "is_update": bool(r % 2),
                                   "stack_id": sid, "atomic_key": 0,
                                   "input_data": json.dumps({"r": r}), "created_at": now})
        for action in ("IN_PROGRESS", "COMPLETE"):
            rows["event"].append({"uuid": str(uuid.uuid5(uuid.NAMESPACE_OID, f"{rid}{action}")),
                                  "stack_id": sid, "resource_action": "CREATE",
                                  "resource_status": action, "resource_name": f"r{r}",
                                  "physical_resource_id": None, "resource_type":
                                  "OS::Heat::RandomString", "resource_status_reason": "state",
                                  "rsrc_prop_data_id": rid, "created_at": now})
    rows["stack_tag"].append({"id": n + 1, "stack_id": sid, "tag": f"tag{n % 7}",
                              "created_at": now})
    if n % 10 == 0:
        rows["snapshot"].append({"id": str(uuid.UUID(int=4 * 10**9 + n)), "stack_id": sid,
                                 "name": f"snap-{n}", "tenant": "p" * 32, "status": "COMPLETE",
                                 "status_reason": "", "data": json.dumps({"resources": {}}),
                                 "created_at": now})
with engine.begin() as conn:
    for name, batch in rows.items():
        if batch:
            known = set(t[name].c.keys())
            conn.execute(t[name].insert(), [{k: v for k, v in row.items() if k in known}
                                            for row in batch])
    if engine.dialect.name == "postgresql":
        # explicit ids: move the sequences past them, so Heat's own inserts still work
        for name in ("raw_template", "user_creds", "resource_properties_data", "resource",
                     "resource_data", "event", "stack_tag"):
            conn.execute(sa.text(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                                 f"(SELECT max(id) FROM {name}))"))
engine.dispose()
print(json.dumps({name: len(batch) for name, batch in rows.items()}))
'''


def populate(python: Path, url: str, stacks: int, start: int = 0) -> str:
    """Insert ``stacks`` completed stacks (template, creds, 5 resources each, events, sync
    points, tags, a snapshot every 10th) by SQL with ``python`` (a release venv's)."""
    cmd = [str(python), "-c", POPULATE, url, str(stacks), str(start)]
    outcome = run(ExecuteRequest(cmd, timeout=900, env={"PYTHONWARNINGS": "ignore"}))
    return outcome.assert_success(f"populating {stacks} stacks").out.strip()


EXECUTE = r'''
import sys
import sqlalchemy as sa

engine = sa.create_engine(sys.argv[1], poolclass=sa.pool.NullPool)
with engine.begin() as conn:
    print([conn.execute(sa.text(statement)).rowcount for statement in sys.argv[2:]])
engine.dispose()
'''


def execute(python: Path, url: str, *statements: str) -> str:
    """Run SQL ``statements`` in one transaction with ``python`` (a release venv's); the
    number of rows each one touched."""
    cmd = [str(python), "-c", EXECUTE, url, *statements]
    outcome = run(ExecuteRequest(cmd, timeout=120, env={"PYTHONWARNINGS": "ignore"}))
    return outcome.assert_success(f"executing {statements}").out.strip()


def table_names(python: Path, url: str) -> list[str]:
    """Every table of the database at ``url``, as SQLAlchemy reflects them."""
    code = ("import json, sys, sqlalchemy as sa; e = sa.create_engine(sys.argv[1]); "
            "print(json.dumps(sa.inspect(e).get_table_names()))")
    outcome = run(ExecuteRequest([str(python), "-c", code, url], timeout=120))
    names: list[str] = json.loads(outcome.assert_success("listing tables").out)
    return names


def heat_database(release: Release, db: Database, root: Path,
                  stacks: int) -> tuple[HeatProject, Deployment]:
    """``db`` (started) made a Heat database of ``release`` holding ``stacks`` populated
    stacks: heat.conf rendered under ``root``, the release's db_sync, then :func:`populate`."""
    project = HeatProject()
    deployment = Deployment(root, db, free_port())
    project.configure(release, deployment)
    project.db_sync(release, deployment).assert_success(f"{release.label} db_sync")
    populate(release.python, db.url(), stacks)
    return project, deployment


#: rows of ``event`` that :func:`populate` writes per stack (5 resources x 2 events)
EVENTS_PER_STACK = 10
