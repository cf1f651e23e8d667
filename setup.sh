#!/usr/bin/env bash
# Install what netconform needs on Debian (as root): system packages and a
# virtualenv in .venv with netconform installed in editable mode.
set -euo pipefail
cd "$(dirname "$0")"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
    docker.io iptables iperf3 sockperf busybox-static iproute2 util-linux procps \
    iputils-ping tcpdump ethtool openvswitch-switch chromium \
    python3 python3-venv >/dev/null
# Node.js and npm for the Allure report (allure 3 from the npm registry), unless already there.
command -v npm >/dev/null || apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q -e .
echo "netconform is set up: .venv/bin/pytest --list-topologies"
