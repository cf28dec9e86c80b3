#!/usr/bin/env bash
# Create .venv and install bonelift with its test and video extras (PyTorch CPU from the local wheel index).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q torch==2.13.0
.venv/bin/pip install -q -e ".[test,video]"
