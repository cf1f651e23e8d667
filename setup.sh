#!/usr/bin/env bash
# Install what netconform needs on Debian (as root): system packages and a
# virtualenv in .venv with netconform installed in editable mode.
#   bash setup.sh            everything, the vagrant provider's tool chain and box included
#   bash setup.sh --no-vm    without them: enough for the netns provider (CI jobs without VMs)
set -euo pipefail
cd "$(dirname "$0")"
vm=1
for arg in "$@"; do
    case "$arg" in
        --no-vm) vm=0 ;;
        *) echo "setup.sh: unknown option '$arg'; allowed: --no-vm" >&2; exit 2 ;;
    esac
done
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
    docker.io iptables nftables iperf3 busybox-static iproute2 util-linux procps \
    iputils-ping tcpdump ethtool openvswitch-switch chromium gcc libc6-dev patchelf \
    podman netavark aardvark-dns catatonit \
    python3 python3-venv >/dev/null
if [ "$vm" = 1 ]; then
    # The VM providers: vagrant-libvirt, QEMU, and what building the box from Debian packages
    # takes.  libvirt without libvirt-daemon-system: each lab starts a libvirtd of its own inside
    # its sandbox, and no system-wide daemon or default network touches the root namespace.
    apt-get install -y -qq --no-install-recommends \
        vagrant vagrant-libvirt libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients \
        qemu-system-x86 qemu-utils \
        dnsmasq-base openssh-client debootstrap extlinux e2fsprogs >/dev/null
    # The one thing of libvirt-daemon-system the lab's libvirtd needs: its QEMU user must exist,
    # though the lab runs QEMU as root (libvirt resolves the user before reading qemu.conf).
    getent group libvirt-qemu >/dev/null || groupadd --system libvirt-qemu
    getent passwd libvirt-qemu >/dev/null || useradd --system -g libvirt-qemu --no-create-home \
        --home-dir /var/lib/libvirt --shell /usr/sbin/nologin libvirt-qemu
fi
# Node.js and npm for the Allure report (allure 3 from the npm registry), unless already there.
command -v npm >/dev/null || apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q -e .
# The Docker engines of Debian 12, 13 and unstable and the Podman of Debian 13, unstable and
# experimental for --engine (downloaded with a private apt sources list into
# ~/.cache/netconform/engines; the machine's apt and packages stay as they are; Podman's tools,
# built for a newer C library, are relinked with patchelf to their release's own loader).
.venv/bin/netconform engines fetch
# Weave Net's router and helper for the weave scheme: third-party binaries (Weave Net 2.8.1, see
# its README there), installed from a weave/ directory beside the checkout where the machine has
# one; elsewhere the weave lab is skipped saying where to get them.
weave="$(cd .. && pwd)/shared/weave"
if [ -x "$weave/weaver" ] && [ -x "$weave/weaveutil" ]; then
    install -m 0755 "$weave/weaver" "$weave/weaveutil" /usr/local/bin/
else
    echo "setup.sh: no Weave Net binaries at $weave: the weave topology will be skipped" >&2
fi
# The vagrant provider's box (about 2 minutes once; cached until its package list changes).
[ "$vm" = 0 ] || .venv/bin/netconform box
echo "netconform is set up: .venv/bin/pytest --list-topologies"
