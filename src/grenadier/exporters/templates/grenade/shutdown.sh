#!/bin/bash
# grenade's shutdown phase for Heat, written by `grenadier export grenade`.
#
# Under grenade: stop Heat's devstack services and make sure they are down.
# Outside grenade (GRENADIER_RUN_DIR names a run kept with --keep-running): grenadier's own
# runner takes the deployment down to its shutdown step, leaving the database up.

set -o errexit
set -o pipefail

if [[ -z "${GRENADE_DIR:-}" ]]; then
    : "${GRENADIER_RUN_DIR:?set GRENADE_DIR (under grenade) or GRENADIER_RUN_DIR (a grenadier run)}"
    exec "${GRENADIER_PYTHON:-python3}" -m grenadier run --resume "$GRENADIER_RUN_DIR" \
        --stop-after shutdown --keep-running
fi

# shellcheck source=/dev/null
source "$GRENADE_DIR/grenaderc"
# shellcheck source=/dev/null
source "$GRENADE_DIR/functions"
# shellcheck source=/dev/null
source "$BASE_DEVSTACK_DIR/functions"
# shellcheck source=/dev/null
source "$BASE_DEVSTACK_DIR/stackrc"
# shellcheck source=/dev/null
source "$BASE_DEVSTACK_DIR/lib/tls"
# shellcheck source=/dev/null
source "$BASE_DEVSTACK_DIR/lib/apache"

# Heat's own devstack plugin (devstack/lib/heat of the tree this plugin lives in)
HEAT_DEVSTACK_DIR=$(dirname "$(cd "$(dirname "$0")" && pwd)")
# shellcheck source=/dev/null
source "$HEAT_DEVSTACK_DIR/lib/heat"

set -o xtrace

stop_heat
# sanity check that nothing of Heat is left running
ensure_services_stopped heat-api heat-engine heat-api-cfn
