#!/bin/sh
# Runs as root only long enough to hand the Docker secrets to the service user, then drops to it.
#   DB_PASSWORD_FILE  the database password (a secret file): written to a libpq passfile (not a
#                     PULUMI_STATE_* name: check-config takes every one of those for a setting)
#   ITL_PULUMI_TOKEN_FILE, PULUMI_STATE_MASTER_KEY_FILE  copied where the service user can read them
set -eu
if [ "$(id -u)" = 0 ]; then
    priv=/run/pulumi-state
    mkdir -p "$priv"
    chmod 0700 "$priv"
    if [ -n "${DB_PASSWORD_FILE:-}" ]; then
        printf '*:*:*:*:%s\n' "$(cat "$DB_PASSWORD_FILE")" > "$priv/pgpass"
        export PGPASSFILE="$priv/pgpass"
    fi
    for var in ITL_PULUMI_TOKEN_FILE PULUMI_STATE_MASTER_KEY_FILE PULUMI_STATE_OLD_MASTER_KEY_FILE; do
        eval "src=\${$var:-}"
        if [ -n "$src" ]; then
            cp "$src" "$priv/$var"
            export "$var=$priv/$var"
        fi
    done
    chmod 0600 "$priv"/* 2>/dev/null || true
    chown -R pulumi-state "$priv"
    exec setpriv --reuid=pulumi-state --regid=pulumi-state --init-groups "$@"
fi
exec "$@"
