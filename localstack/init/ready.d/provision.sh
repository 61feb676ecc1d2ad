#!/bin/bash
# LocalStack READY hook (runs inside the LocalStack container): creates the
# tables and queues of template.yaml with the same provision.py that
# scripts/dev runs against moto. The repo is mounted read-only at /opt/kicksync.
set -euo pipefail

# KICKSYNC_REPO / KICKSYNC_AWS_ENDPOINT only exist to try the hook outside the container.
repo="${KICKSYNC_REPO:-/opt/kicksync}"
region="${KICKSYNC_REGION:-ap-northeast-2}"

# LocalStack's own virtualenv has boto3; fall back to any python3 that does.
python=""
for candidate in /opt/code/localstack/.venv/bin/python python3; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import boto3' 2>/dev/null; then
        python="$candidate"
        break
    fi
done
if [[ -z "$python" ]]; then
    echo "kicksync provision: no python3 with boto3 in this image" >&2
    exit 1
fi

# PyYAML goes to a scratch directory, leaving LocalStack's environment as it is.
if ! "$python" -c 'import yaml' 2>/dev/null; then
    "$python" -m pip install --quiet --disable-pip-version-check \
        --target /tmp/kicksync-pylib PyYAML
    export PYTHONPATH="/tmp/kicksync-pylib${PYTHONPATH:+:$PYTHONPATH}"
fi

AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test \
    "$python" "$repo/scripts/provision.py" --endpoint "${KICKSYNC_AWS_ENDPOINT:-http://localhost:4566}" \
    --region "$region" --template "$repo/template.yaml"
