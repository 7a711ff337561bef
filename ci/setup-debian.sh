#!/bin/sh
# Set up a Debian 12 host for gupvm: Debian packages, then a virtualenv in
# .venv with gupvm and its test dependencies. Safe to run again. Adds no apt
# source and no architecture: kernels other than the installed 6.1, and the
# other guest arches' busybox and static libraries, come through gupvm's own private apt state.
set -eu
cd "$(dirname "$0")/.."
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# A mirror that is mid-sync fails one index; the install below says whether it mattered.
as_root apt-get update || echo "setup: apt-get update reported errors; trying the install anyway" >&2
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    qemu-system-x86 qemu-system-arm linux-source-6.1 \
    gcc-i686-linux-gnu libc6-dev-i386-cross gcc-aarch64-linux-gnu libc6-dev-arm64-cross \
    gcc-arm-linux-gnueabihf libc6-dev-armhf-cross \
    gcc make flex bison bc libelf-dev libssl-dev cpio rsync xz-utils ccache e2fsprogs \
    git python3 python3-venv python3-pip chromium

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install --quiet --upgrade pip
.venv/bin/pip install --quiet -e '.[test]'
.venv/bin/gupvm doctor
