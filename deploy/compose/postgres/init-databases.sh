#!/bin/bash
# One database per context on this one server (ADR 0018: each context keeps its tables in a
# database of its own), owned by $POSTGRES_USER. The postgres image runs this once, when its data
# volume is new; `haot migrate --context NAME` then creates each database's tables.
# The list is haot.platform.settings.CONTEXTS (tests/ops/test_deploy_files.py checks it).
set -euo pipefail
for context in identity lodging reservation payment point coupon review; do
    echo "creating database haot_${context}"
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
        -c "CREATE DATABASE \"haot_${context}\" OWNER \"${POSTGRES_USER}\""
done
