#!/usr/bin/env bash
# Create .venv and install bonelift with its test and video extras (PyTorch CPU from the local wheel index).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q torch==2.13.0
.venv/bin/pip install -q -e ".[test,video]"
# OpenSim 4.6 (`bonelift opensim`): its metadata asks for numpy>=2.1, which mediapipe==0.10.21 (numpy 1.26) rules
# out, so it cannot be an extra (the resolver refuses); the wheel works with numpy 1.26, hence --no-deps.
.venv/bin/pip install -q --no-deps opensim==4.6
