#!/bin/bash
# grenade's resource phases for Heat, written by `grenadier export grenade` (PLUGINS.rst):
#
#   resources.sh create               base Heat up: smoke tests, then the suite's pre_upgrade
#                                     tests create stacks and record them in the state file
#   resources.sh verify pre-upgrade   API up: the suite's read-only post_upgrade checks
#   resources.sh verify_noapi         Heat down: every recorded stack, resource and software
#                                     config row is still in Heat's database
#   resources.sh verify post-upgrade  target up: the read-only checks again, and smoke tests
#   resources.sh destroy              the remaining post_upgrade tests: update, check,
#                                     suspend/resume, signal, new stacks, then delete them all
#
# verify and verify_noapi only read, so grenade may call them any number of times.
# Each phase is one pytest run of grenadier's Heat suite (the same tests `grenadier run` uses).
#
# Under grenade the Heat to test is found from devstack (openrc, the keystone catalog,
# heat.conf). Outside grenade give it one: GRENADIER_HEAT_URL (and GRENADIER_HEAT_PROJECT,
# GRENADIER_HEAT_USER) and GRENADIER_STATE; verify_noapi needs GRENADIER_DB_URL and
# GRENADIER_DB_PYTHON (a Python with SQLAlchemy and the DB driver, e.g. Heat's own).

set -o errexit
set -o pipefail

if [[ -n "${GRENADE_DIR:-}" ]]; then
    # shellcheck source=/dev/null
    source "$GRENADE_DIR/grenaderc"
    # shellcheck source=/dev/null
    source "$GRENADE_DIR/functions"
    # shellcheck source=/dev/null
    source "$TOP_DIR/inc/ini-config"
fi

# The Python grenadier runs from: given, or a virtualenv made once with GRENADIER_INSTALL
GRENADIER_PYTHON=${GRENADIER_PYTHON:-}
GRENADIER_INSTALL=${GRENADIER_INSTALL:-"@@install@@"}
GRENADIER_VENV=${GRENADIER_VENV:-${STACK_ROOT:-/opt/stack}/grenadier-venv}
# The suite: grenadier's built-in one, plus your own test paths (space separated)
GRENADIER_SUITE=${GRENADIER_SUITE:-grenadier.plugins.heat.suite}
GRENADIER_TESTS=${GRENADIER_TESTS:-}
# The post_upgrade tests that only read (verify runs them; destroy runs all the others too)
GRENADIER_VERIFY=${GRENADIER_VERIFY:-"@@verify@@"}
GRENADIER_LOGS=${GRENADIER_LOGS:-${LOGDIR:-${TMPDIR:-/tmp}}/grenadier}
# pytest's exit code when a selection holds no test: an empty phase is not a failure
NO_TESTS=5
# names each pytest run's JUnit file: <step>-<marker>.xml (verify runs on both sides)
STEP=${1:-none}${2:+-$2}

function _python {
    if [[ -z "$GRENADIER_PYTHON" ]]; then
        if [[ ! -x "$GRENADIER_VENV/bin/python" ]]; then
            python3 -m venv "$GRENADIER_VENV"
            "$GRENADIER_VENV/bin/python" -m pip install -q "$GRENADIER_INSTALL"
        fi
        GRENADIER_PYTHON=$GRENADIER_VENV/bin/python
    fi
}

function _heat_python {
    # Heat's own Python has SQLAlchemy and the DB driver: the shebang of heat-manage
    local manage
    manage=$(command -v heat-manage || true)
    if [[ -n "$manage" ]]; then
        head -n 1 "$manage" | sed -e 's/^#!//' -e 's/ .*//'
    elif [[ -x /opt/stack/data/venv/bin/python ]]; then
        echo /opt/stack/data/venv/bin/python
    else
        echo python3
    fi
}

function _db_env {
    # Heat's database, read from devstack's heat.conf unless given
    if [[ -n "${GRENADE_DIR:-}" ]]; then
        export GRENADIER_STATE=${GRENADIER_STATE:-$SAVE_DIR/grenadier-state.json}
        if [[ -z "${GRENADIER_DB_URL:-}" ]]; then
            GRENADIER_DB_URL=$(iniget "${HEAT_CONF:-/etc/heat/heat.conf}" database connection)
        fi
        GRENADIER_DB_PYTHON=${GRENADIER_DB_PYTHON:-$(_heat_python)}
    fi
    : "${GRENADIER_STATE:?GRENADIER_STATE: the file the suite records its stacks in}"
    : "${GRENADIER_DB_URL:?GRENADIER_DB_URL: the URL of the Heat database}"
    : "${GRENADIER_DB_PYTHON:?GRENADIER_DB_PYTHON: a Python that can open it}"
    export GRENADIER_DB_URL GRENADIER_DB_PYTHON
}

function _api_env {
    # Heat's API from the keystone catalog, as the admin of devstack's demo cloud
    if [[ -n "${GRENADE_DIR:-}" ]]; then
        export GRENADIER_STATE=${GRENADIER_STATE:-$SAVE_DIR/grenadier-state.json}
        # shellcheck source=/dev/null
        source "$TOP_DIR/openrc" admin admin
        local url
        url=$(openstack endpoint list --service orchestration --interface public \
            -f value -c URL | head -n 1)
        export GRENADIER_HEAT_URL=${GRENADIER_HEAT_URL:-${url%%/v1/*}}
        if [[ -z "${GRENADIER_HEAT_PROJECT:-}" ]]; then
            GRENADIER_HEAT_PROJECT=$(openstack project show "$OS_PROJECT_NAME" -f value -c id)
        fi
        export GRENADIER_HEAT_PROJECT GRENADIER_HEAT_USER=${GRENADIER_HEAT_USER:-$OS_USERNAME}
        # a fresh token per phase: tokens expire, phases are hours apart in a slow gate
        GRENADIER_HEAT_TOKEN=$(openstack token issue -f value -c id)
        export GRENADIER_HEAT_TOKEN
    fi
    : "${GRENADIER_HEAT_URL:?GRENADIER_HEAT_URL: the Heat API to test}"
    : "${GRENADIER_STATE:?GRENADIER_STATE: the file the suite records its stacks in}"
}

function _suite {
    # _suite PHASE MARKER [PYTEST ARGS...]: the suite's tests of MARKER, one pytest run
    local phase=$1 marker=$2 code=0
    shift 2
    _python
    mkdir -p "$GRENADIER_LOGS"
    # an empty ini: the project's own pytest configuration must not leak into the suite
    printf '[pytest]\n' > "$GRENADIER_LOGS/pytest.ini"
    local -a tests=()
    read -r -a tests <<< "$GRENADIER_TESTS"
    GRENADIER_PHASE=$phase "$GRENADIER_PYTHON" -m pytest -p no:cacheprovider -rfEs \
        -c "$GRENADIER_LOGS/pytest.ini" --rootdir "$GRENADIER_LOGS" --import-mode=importlib \
        --junitxml "$GRENADIER_LOGS/$STEP-$marker.xml" \
        --pyargs "$GRENADIER_SUITE" "${tests[@]}" -m "$marker" "$@" || code=$?
    if [[ $code -ne 0 && $code -ne $NO_TESTS ]]; then
        echo "resources.sh: $marker tests failed in phase $phase (pytest exit $code)" >&2
        return "$code"
    fi
}

function create {
    _api_env
    _suite smoke-base smoke
    _suite pre-upgrade pre_upgrade
}

function verify {
    local side=${1:-pre-upgrade}
    _api_env
    _suite "$side" post_upgrade -k "$GRENADIER_VERIFY"
    if [[ "$side" == "post-upgrade" ]]; then
        _suite smoke-target smoke
    fi
}

function verify_noapi {
    _db_env
    # one pass: grenade calls this once Heat is down, not during the upgrade itself
    export GRENADIER_WATCH_SECONDS=${GRENADIER_WATCH_SECONDS:-0}
    _suite during-upgrade during_upgrade
}

function destroy {
    _api_env
    _suite post-upgrade post_upgrade
}

case "${1:-}" in
    create)
        create
        ;;
    verify)
        verify "${2:-pre-upgrade}"
        ;;
    verify_noapi)
        verify_noapi
        ;;
    destroy)
        destroy
        ;;
    *)
        # grenade has more phases (early_create); Heat has nothing to do in them
        echo "resources.sh: nothing to do for phase '${1:-}'"
        ;;
esac
