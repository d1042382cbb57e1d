"""The options of one run, saved in the run directory so that ``--resume`` needs nothing else."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from grenadier.errors import UsageError
from grenadier.host import write_private
from grenadier.masking import mask_url
from grenadier.model.steps import SMOKE_MODES, step_names
from grenadier.options.flags import Flag, flag, flags_of

DATABASES = ("postgresql", "sqlite", "mariadb")
SHUTDOWN_MODES = ("graceful", "crash")
BUSES = ("fake", "rabbit")
TOPOLOGIES = ("all-in-one", "split")
AUTHS = ("noauth", "keystone")
MODES = ("cold", "rolling")
#: more engines than this on a 2-core machine only measure the machine
MAX_ENGINES = 8
OPTIONS_FILE = "run.json"
#: the project under upgrade test (the one project plugin grenadier ships)
PROJECT = "heat"
#: ``--smoke`` when not given: the gabbits add about 9 s to each smoke phase, which would take
#: the default run past its time goal (see benchmarks/upstream_smoke.py)
DEFAULT_SMOKE = "builtin"


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


_PLANE = "control plane"
_ROLLING = "rolling upgrade"
#: what a password on the command line is
PS_NOTE = "visible to other local users in ps while grenadier runs"


@dataclass
class RunOptions:
    """Everything that shapes a run; defaults match ``grenadier run`` with no flags."""

    base: str = flag("--base", default="latest-1", cli_default=None,
                     help="base release: 26.0.2, openstack-heat==26.0.2, latest, latest-1, "
                          "or a Heat source tree (default: latest-1)")
    target: str = flag("--target", default="latest", cli_default=None,
                       help="target release (default: latest)")
    project: str = PROJECT
    db: str = flag("--db", default="postgresql", choices=DATABASES,
                   help="database backend (default: embedded postgresql)")
    db_url: str | None = flag("--db-url", default=None, exclusive="db-url", metavar="URL",
                              help="use an existing PostgreSQL/MySQL server at this URL "
                                   f"({PS_NOTE}: prefer --db-url-file)")
    shutdown: str = flag("--shutdown", default="graceful", choices=SHUTDOWN_MODES,
                         help="stop Heat gracefully or kill it (crash scenario)")
    port: int | None = flag("--port", default=None, type=int,
                            help="Heat API port on 127.0.0.1 (default: a free one)")
    tests: list[str] = flag("--tests", action="append", metavar="DIR",
                            help="add your own upgrade tests (repeatable)")
    checks: list[str] = flag("--checks", default=[], type=_csv,
                             help="run only these checks (comma list)")
    skip_checks: list[str] = flag("--skip-checks", default=[], type=_csv,
                                  help="skip these checks")
    config: list[str] = flag("--config", action="append", metavar="FILE",
                             help="merge your own heat.conf file into the run's config "
                                  "(repeatable)")
    #: stuck IN_PROGRESS stacks left by a dead engine fail the run (True) or are reported
    fail_on_stuck: bool = flag("--fail-on-stuck", default=False, action="store_true",
                               help="fail the run when a stack is left IN_PROGRESS by the dead "
                                    "engine (--mode rolling: also on operations an engine's "
                                    "stop lost)")
    builtin_suite: bool = flag("--no-builtin-suite", default=True, action="store_false",
                               help="run only the tests given with --tests")
    #: the smoke phases' tests: ``builtin`` (the suite's own), ``upstream`` (the project's
    #: upstream tests: Heat's gabbits, also run once in post-upgrade) or ``all``
    smoke: str = flag("--smoke", default="builtin", cli_default=None, choices=SMOKE_MODES,
                      help="smoke tests of smoke-base and smoke-target: builtin (grenadier's "
                           "own), upstream (Heat's heat-tempest-plugin API gabbits, run again "
                           "in post-upgrade and compared base against target) or all (default: "
                           "builtin; none with --no-builtin-suite)")
    #: stop at the first failed step; by default a run goes on after a failure from the
    #: upgrade step on while the target can still be tested
    fail_fast: bool = flag("--fail-fast", default=False, action="store_true",
                           help="stop at the first failed step (by default a failed upgrade, "
                                "start-target or smoke-target lets the post-upgrade tests run)")
    #: run the same scenario base -> base beside this one (runner/control.py) and label every
    #: finding and failed test "introduced by the upgrade" or "also without upgrade"
    control: bool = flag("--control", default=False, action="store_true",
                         help="also run base -> base (stop, db_sync, restart the same release) "
                              "beside this run, and label every finding 'introduced by the "
                              "upgrade' or 'also without upgrade': only the first kind fails")
    cache_dir: str | None = flag("--cache-dir", default=None,
                                 help="release cache (default: $GRENADIER_CACHE or user cache)")
    #: Heat's RPC: in-process ``fake`` (one process only) or ``rabbit`` (private or --bus-url)
    bus: str = flag("--bus", default="fake", choices=BUSES, group=_PLANE,
                    help="Heat's RPC bus: in-process 'fake' (one process), or a private "
                         "RabbitMQ (needs the rabbitmq-server package) (default: fake)")
    #: an existing RabbitMQ (implies bus "rabbit"); None: a private one is started
    bus_url: str | None = flag("--bus-url", default=None, metavar="URL", group=_PLANE,
                               help="use an existing RabbitMQ at rabbit://USER:PASS@HOST:PORT/ "
                                    "(implies --bus rabbit)")
    #: ``all-in-one`` (one process) or ``split`` (heat-wsgi-api + engines); None: split when
    #: a bus is used, else all-in-one
    topology: str | None = flag("--topology", default=None, choices=TOPOLOGIES, group=_PLANE,
                                help="one Heat process per release, or heat-wsgi-api plus "
                                     "--engines heat-engine processes (default: split with a "
                                     "bus, else all-in-one)")
    engines: int = flag("--engines", default=1, type=int, metavar="N", group=_PLANE,
                        help=f"heat-engine processes per release, split only (1-{MAX_ENGINES}; "
                             "default: 1)")
    auth: str = flag("--auth", default="noauth", choices=AUTHS, group=_PLANE,
                     help="noauth, or a private Keystone with real tokens and trusts; the "
                          "tests then run as a non-admin user (default: noauth)")
    mode: str = flag("--mode", default="cold", choices=MODES, group=_ROLLING,
                     help="cold: stop Heat, upgrade, start the target; rolling: target engines "
                          "beside base engines, one service at a time, under a live workload "
                          "(needs --bus rabbit) (default: cold)")
    #: rolling mode's workload: operations at most / at least, per second, seconds at most,
    #: the mix of operations, and the seconds an operation may take
    workload_ops: int = flag("--workload-ops", default=2000, type=int, metavar="N",
                             group=_ROLLING,
                             help="rolling: workload operations at most (default: 2000)")
    workload_min_ops: int = flag("--workload-min-ops", default=100, type=int, metavar="N",
                                 group=_ROLLING,
                                 help="rolling: the workload runs on after the upgrade until "
                                      "it made N operations (default: 100)")
    workload_rate: float = flag("--workload-rate", default=2.0, type=float, metavar="OPS",
                                group=_ROLLING,
                                help="rolling: operations started per second (default: 2)")
    workload_seconds: float = flag("--workload-seconds", default=600.0, type=float,
                                   metavar="S", group=_ROLLING,
                                   help="rolling: the workload stops after S seconds "
                                        "(default: 600)")
    workload_mix: str = flag("--workload-mix", default="create=2,show=3,update=2,signal=2,"
                             "delete=1", metavar="MIX", group=_ROLLING,
                             help="rolling: operation weights (default: %(default)s)")
    workload_op_timeout: float = flag("--workload-op-timeout", default=180.0, type=float,
                                      metavar="S", group=_ROLLING,
                                      help="rolling: a create, update or delete not finished "
                                           "after S seconds fails (default: 180)")
    #: how the release venvs get their libraries: ``auto`` (each release's own series'
    #: upper-constraints), a series, a constraints file or URL, or ``none``
    constraints: str = flag(
        "--constraints", default="auto", metavar="SERIES|FILE|URL|none",
        help="how release venvs get their libraries: auto = the upper-constraints of each "
             "release's OpenStack series (as OpenStack's gate installs it), else the package "
             "index as of the release's upload; a series (e.g. 2026.1), a constraints file or "
             "URL for every release; none = today's index (default: auto)")
    #: an earlier run directory whose releases' freezes are installed exactly
    environment_from: str | None = flag(
        "--environment-from", default=None, metavar="RUN_DIR",
        help="rebuild exactly the release venvs of an earlier run from its "
             "releases/*-freeze.txt (base and target are that run's)")

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Refuse combinations that cannot run; settle the topology (UsageError: exit 2)."""
        for item in flags_of(RunOptions):  # a run.json is not checked by the parser
            value = getattr(self, item.dest)
            if item.choices and value is not None and value not in item.choices:
                raise UsageError(f"{item.strings[0]} {value!r}: choose one of "
                                 f"{', '.join(item.choices)}")
        if self.smoke != "builtin" and not self.builtin_suite:
            raise UsageError(f"--smoke {self.smoke} cannot be combined with --no-builtin-suite: "
                             "the upstream tests run as tests of the built-in suite",
                             hint="drop one of them")
        if self.port is not None and not 1 <= self.port <= 65535:
            raise UsageError(f"--port {self.port} is not a TCP port number")
        if self.db_url:
            from grenadier.services.external import check_db_url

            check_db_url(self.db_url)
        if self.bus_url:
            from grenadier.services.rabbitmq import check_bus_url

            check_bus_url(self.bus_url)
            self.bus = "rabbit"  # the URL names a RabbitMQ: none is started
        if self.topology is None:
            self.topology = "split" if self.bus != "fake" or self.engines > 1 else "all-in-one"
        if not 1 <= self.engines <= MAX_ENGINES:
            raise UsageError(f"--engines {self.engines}: give 1 to {MAX_ENGINES}")
        if self.topology == "split" and self.bus == "fake":
            raise UsageError("Heat split into API and engine processes (--topology split, "
                             "--engines N) needs a message bus: fake:// only works inside one "
                             "process", hint="add --bus rabbit (or --bus-url URL)")
        if self.mode == "rolling" and (self.bus == "fake" or self.topology != "split"):
            raise UsageError("--mode rolling needs a message bus and split topology: old and new "
                             "engines are separate processes", hint="add --bus rabbit")
        if self.mode == "rolling" and self.shutdown == "crash":
            # the crash scenario kills the base release in the cold shutdown step, which
            # rolling mode does not have: accepted, the option would silently do nothing
            raise UsageError("--shutdown crash cannot be combined with --mode rolling: the "
                             "rolling upgrade has no shutdown step to kill Heat in",
                             hint="drop --shutdown crash, or use --mode cold")
        if min(self.workload_rate, self.workload_ops, self.workload_seconds,
               self.workload_op_timeout) <= 0:
            raise UsageError("--workload-rate, --workload-ops, --workload-seconds and "
                             "--workload-op-timeout must be positive")
        if self.mode == "rolling":
            from grenadier.workload.generator import parse_mix

            parse_mix(self.workload_mix)
        from grenadier.releases.constraints import check_choice

        self.constraints = check_choice(self.constraints)
        if self.environment_from is not None and self.constraints != "auto":
            raise UsageError("--constraints cannot be combined with --environment-from: the "
                             "freezes of that run say exactly what to install")
        if self.control:
            self._check_control()
        if self.topology == "all-in-one" and self.engines != 1:
            raise UsageError(f"--engines {self.engines} needs --topology split: the all-in-one "
                             "process runs one engine")

    def _check_control(self) -> None:
        """A control runs beside the run: it cannot share what the run uses alone."""
        shared = [flag for flag, value in (("--db-url", self.db_url), ("--bus-url", self.bus_url),
                                           ("--environment-from", self.environment_from))
                  if value]
        if shared:
            raise UsageError(f"--control cannot be combined with {', '.join(shared)}: the "
                             "control run beside this one would share it",
                             hint="drop --control, or let grenadier start its own database "
                                  "and bus")

    @property
    def control_plane(self) -> str:
        """One line for the console: topology, bus, auth."""
        engines = f", {self.engines} engine(s)" if self.topology == "split" else ""
        bus = "rabbit (external)" if self.bus_url else self.bus
        mode = ", rolling upgrade" if self.mode == "rolling" else ""
        return f"{self.topology}{engines}, bus {bus}, auth {self.auth}{mode}"

    @property
    def step_names(self) -> tuple[str, ...]:
        return step_names(self.mode)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunOptions:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def save(self, run_dir: Path) -> None:
        # --db-url / --bus-url may hold passwords; --resume starts from this file: private, atomic
        write_private(run_dir / OPTIONS_FILE, json.dumps(self.to_dict(), indent=1))

    def shown(self) -> dict[str, Any]:
        """The options as reports show them: passwords in URLs masked."""
        data = self.to_dict()
        for key in ("db_url", "bus_url", "constraints"):
            if data[key]:
                data[key] = mask_url(data[key])
        return data

    @classmethod
    def load(cls, run_dir: Path) -> RunOptions:
        path = run_dir / OPTIONS_FILE
        if not run_dir.is_dir():
            raise UsageError(f"run directory {run_dir} does not exist",
                             hint="give a directory under .grenadier/runs/")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise UsageError(f"{run_dir} is not a grenadier run directory (no {OPTIONS_FILE})",
                             hint="give a directory under .grenadier/runs/") from exc
        except (OSError, json.JSONDecodeError) as exc:
            raise UsageError(f"{path} is unreadable or corrupt, this run cannot be resumed",
                             hint="start a new run") from exc
        if not isinstance(data, dict):
            raise UsageError(f"{path} is corrupt, this run cannot be resumed",
                             hint="start a new run")
        try:
            return cls.from_dict(data)
        except UsageError as exc:
            raise UsageError(f"{path} holds an invalid option ({exc.message}), this run cannot "
                             "be resumed", hint="start a new run") from exc
        except (TypeError, ValueError) as exc:
            raise UsageError(f"{path} holds an option of the wrong type ({exc}), this run "
                             "cannot be resumed", hint="start a new run") from exc


@dataclass
class Invocation:
    """The flags of ``grenadier run`` that steer one invocation, not the run (a resumed run
    takes its options from its run.json and these from its own command line)."""

    db_url_file: str | None = flag("--db-url-file", default=None, metavar="FILE",
                                   exclusive="db-url",
                                   help="read the --db-url from the first line of FILE, so "
                                        "that its password is not on the command line")
    stop_after: str | None = flag("--stop-after", default=None, metavar="STEP",
                                  help=f"stop after STEP (cold: {', '.join(step_names('cold'))}"
                                       f"; rolling: {', '.join(step_names('rolling'))})")
    only: str | None = flag("--only", default=None, metavar="STEP",
                            help="run only STEP (with --resume: of that run)")
    resume: str | None = flag("--resume", default=None, metavar="RUN_DIR",
                              help="continue a run from its first unfinished step")
    workdir: str = flag("--workdir", default=".grenadier", help="where run directories go")
    keep_running: bool = flag("--keep-running", default=False, action="store_true",
                              help="leave the services up at the end (stop them with "
                                   "'grenadier down')")


def run_flags() -> list[Flag]:
    """Every flag of ``grenadier run``: the run's options, then the invocation's."""
    return [*flags_of(RunOptions), *flags_of(Invocation)]


def run_flag(dest: str) -> Flag:
    """The flag of ``grenadier run`` that stores into ``dest`` (other commands share it)."""
    [found] = [item for item in run_flags() if item.dest == dest]
    return found
