#!/bin/bash
# grenade's upgrade phase for Heat, written by `grenadier export grenade`.
#
# Under grenade: install the target Heat, apply from-<base release>/upgrade-heat, keep the old
# heat.conf, db_sync, start Heat and wait for its services (as Heat's own plugin does).
# Outside grenade (GRENADIER_RUN_DIR names a run kept with --keep-running): grenadier's own
# runner does the upgrade step (db_sync with the target, database and configuration checks)
# and starts the target on the old configuration.

set -o errexit
set -o pipefail

if [[ -z "${GRENADE_DIR:-}" ]]; then
    : "${GRENADIER_RUN_DIR:?set GRENADE_DIR (under grenade) or GRENADIER_RUN_DIR (a grenadier run)}"
    exec "${GRENADIER_PYTHON:-python3}" -m grenadier run --resume "$GRENADIER_RUN_DIR" \
        --stop-after start-target --keep-running
fi

echo "*********************************************************************"
echo "Begin $0"
echo "*********************************************************************"

# Stop and tell grenade (our caller) when we are interrupted
function cleanup {
    set +o errexit
    echo "ERROR: Abort $0"
    trap - SIGINT
    kill -2 $$
}
trap cleanup SIGHUP SIGINT SIGTERM

# where from-<release>/ lives, and Heat's devstack plugin (the directory above)
RUN_DIR=$(cd "$(dirname "$0")" && pwd)
HEAT_DEVSTACK_DIR=$(dirname "$RUN_DIR")

# shellcheck source=/dev/null
source "$GRENADE_DIR/grenaderc"
# shellcheck source=/dev/null
source "$GRENADE_DIR/functions"
# shellcheck source=/dev/null
source "$TARGET_DEVSTACK_DIR/functions"
# shellcheck source=/dev/null
source "$TARGET_DEVSTACK_DIR/stackrc"
# shellcheck source=/dev/null
source "$TARGET_DEVSTACK_DIR/lib/tls"
# shellcheck source=/dev/null
source "$TARGET_DEVSTACK_DIR/lib/stack"
# shellcheck source=/dev/null
source "$TARGET_DEVSTACK_DIR/lib/apache"
# shellcheck source=/dev/null
source "$TARGET_DEVSTACK_DIR/lib/rpc_backend"
# shellcheck source=/dev/null
source "$HEAT_DEVSTACK_DIR/lib/heat"

set -o xtrace

# the base release's configuration is what the target must start on: keep a copy
[[ -d "$SAVE_DIR/etc.heat" ]] || cp -pr "$HEAT_CONF_DIR" "$SAVE_DIR/etc.heat"

# install the target Heat with its own devstack plugin
# shellcheck source=/dev/null
source "$HEAT_DEVSTACK_DIR/plugin.sh" stack install

# the node that runs the upgrade gets its own RPC vhost in a multinode job
if [[ "${HOST_TOPOLOGY:-}" == "multinode" ]]; then
    rpc_backend_add_vhost newvhost
    iniset_rpc_backend heat "$HEAT_CONF" DEFAULT newvhost
fi

# from-<base release>/upgrade-heat: configuration changes the target needs, if any
upgrade_project heat "$RUN_DIR" "$BASE_DEVSTACK_BRANCH" "$TARGET_DEVSTACK_BRANCH"

HEAT_BIN_DIR=$(dirname "$(command -v heat-manage)")
"$HEAT_BIN_DIR/heat-manage" --config-file "$HEAT_CONF" db_sync || die $LINENO "DB sync error"

start_heat
# process names as is_service_running greps them (heat-api-cfn shows as heat-api-cf)
ensure_services_started heat-api heat-engine heat-api-cf

set +o xtrace
echo "*********************************************************************"
echo "SUCCESS: End $0"
echo "*********************************************************************"
