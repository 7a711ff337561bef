#!/bin/sh
# Set up a Debian 12 host for gupvm: Debian packages (with the i386
# architecture for the 32-bit guests' busybox), then a virtualenv in .venv
# with gupvm and its test dependencies. Safe to run again.
set -eu
cd "$(dirname "$0")/.."
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

as_root dpkg --add-architecture i386
. /etc/os-release
if [ "${VERSION_CODENAME:-}" = bookworm ]; then
    # linux-source-6.12 is in bookworm-backports.
    backports=/etc/apt/sources.list.d/gupvm-bookworm-backports.sources
    [ -f "$backports" ] || printf '%s\n' 'Types: deb' 'URIs: http://deb.debian.org/debian' \
        'Suites: bookworm-backports' 'Components: main' \
        'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg' | as_root tee "$backports" > /dev/null
fi
# A mirror that is mid-sync fails one index; the install below says whether it mattered.
as_root apt-get update || echo "setup: apt-get update reported errors; trying the install anyway" >&2
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    qemu-system-x86 linux-source-6.1 linux-source-6.12 busybox-static \
    gcc gcc-multilib make flex bison bc libelf-dev libssl-dev cpio rsync xz-utils ccache \
    git python3 python3-venv python3-pip chromium

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install --quiet --upgrade pip
.venv/bin/pip install --quiet -e '.[test]'
.venv/bin/gupvm doctor
