#!/bin/sh
# Apply migrations (safe with several replicas starting at once), then run lighttpd.
set -e
pulumi-state-admin migrate
exec lighttpd -D -f /etc/pulumi-state/lighttpd.conf
