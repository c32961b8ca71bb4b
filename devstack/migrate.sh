#!/usr/bin/env bash
# Applies the platform's migrations (package data: lakehouse/db/migrations/) to the local platform
# database (safe to run twice).
source "$(dirname "$0")/lib.sh"
eval "$("$DEVSTACK_DIR/services/postgres.sh" env)"
export DATABASE_URL
"$REPO_ROOT/.venv/bin/python" -m lakehouse.db.migrate
