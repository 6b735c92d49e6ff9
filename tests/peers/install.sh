#!/usr/bin/env bash
# Installs the real peers and capture tools the tests drive (Debian 12). Safe to run
# again: packages already installed are skipped, and when none is missing it does not
# touch apt at all. Nothing it installs is started: tests start their own daemons inside
# network namespaces, so a system-wide nginx/redis/dnsmasq would only steal ports.
#
# Python packages Debian does not ship are pinned in pip/*.txt (one requirement per line)
# and installed with pip into the system's python3 (--break-system-packages: these
# machines exist to run the tests; a venv would hide them from the tests' `python3`).
#
# Usage: bash tests/peers/install.sh [extra-package...]
set -euo pipefail

PACKAGES=(
    iproute2 iptables tcpdump tshark curl nginx-light redis-server redis-tools
    dnsmasq dnsutils netcat-openbsd socat python3 iputils-ping
    # postgresql: the demo's db and the PostgreSQL parser's integration tests
    postgresql
    "$@"
)
# Each protocol's tests list the extra peers they need, one package per line.
for list in "$(dirname "$0")"/packages/*.txt; do
    [ -e "$list" ] || continue
    while read -r p _; do
        case "$p" in ''|'#'*) ;; *) PACKAGES+=("$p") ;; esac
    done < "$list"
done

PIP_PACKAGES=()
for list in "$(dirname "$0")"/pip/*.txt; do
    [ -e "$list" ] || continue
    while read -r p _; do
        case "$p" in ''|'#'*) ;; *) PIP_PACKAGES+=("$p") ;; esac
    done < "$list"
done

SUDO=()
[ "$(id -u)" -eq 0 ] || SUDO=(sudo -n)

# pip_install: installs the pinned PyPI packages whose pinned version is not installed.
pip_install() {
    local spec name want have missing_pip=()
    for spec in "${PIP_PACKAGES[@]+"${PIP_PACKAGES[@]}"}"; do
        name=${spec%%==*}
        want=${spec#*==}
        have=$(python3 -m pip show "$name" 2>/dev/null | sed -n 's/^Version: //p' || true)
        [ "$have" = "$want" ] || missing_pip+=("$spec")
    done
    if [ ${#missing_pip[@]} -eq 0 ]; then
        echo "peers: all ${#PIP_PACKAGES[@]} pip packages already installed"
        return
    fi
    echo "peers: pip installing ${missing_pip[*]}"
    local flags=(--disable-pip-version-check --no-input -q)
    # Debian 12's pip refuses to touch the system python without it (PEP 668).
    if python3 -m pip install --help 2>/dev/null | grep -q -- --break-system-packages; then
        flags+=(--break-system-packages)
    fi
    "${SUDO[@]}" python3 -m pip install "${flags[@]}" "${missing_pip[@]}"
}

installed() {
    # `dpkg-query -W` also lists removed-but-configured packages; only "install ok
    # installed" means the files are there.
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

missing=()
for p in "${PACKAGES[@]}"; do
    installed "$p" || missing+=("$p")
done
# nginx-light is gone from some suites (Debian 13 folded it into nginx); any nginx will do.
if [ ${#missing[@]} -gt 0 ] && command -v nginx >/dev/null 2>&1; then
    keep=()
    for p in "${missing[@]}"; do [ "$p" = nginx-light ] || keep+=("$p"); done
    missing=("${keep[@]+"${keep[@]}"}")
fi

if [ ${#missing[@]} -eq 0 ]; then
    echo "peers: all ${#PACKAGES[@]} packages already installed"
    pip_install
    exit 0
fi
echo "peers: installing ${missing[*]}"

export DEBIAN_FRONTEND=noninteractive
# Answer wireshark-common's "should non-superusers capture?" before it is asked.
echo "wireshark-common wireshark-common/install-setuid boolean false" | "${SUDO[@]}" debconf-set-selections

# policy-rc.d exit 101 tells invoke-rc.d (and so every maintainer script) "do not start
# this service"; it works with or without systemd. Restore whatever was there before.
POLICY=/usr/sbin/policy-rc.d
backup=""
if [ -e "$POLICY" ]; then
    backup=$(mktemp)
    "${SUDO[@]}" cp -p "$POLICY" "$backup"
fi
restore_policy() {
    if [ -n "$backup" ]; then
        "${SUDO[@]}" mv -f "$backup" "$POLICY"
    else
        "${SUDO[@]}" rm -f "$POLICY"
    fi
}
trap restore_policy EXIT
printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$POLICY" >/dev/null
"${SUDO[@]}" chmod 755 "$POLICY"

"${SUDO[@]}" apt-get update -qq
resolved=()
for p in "${missing[@]}"; do
    if [ "$p" = nginx-light ] && ! apt-cache show nginx-light >/dev/null 2>&1; then
        resolved+=(nginx)
    else
        resolved+=("$p")
    fi
done
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${resolved[@]}"

# Belt and braces: if something started anyway (an init that ignores policy-rc.d), stop
# and disable it so the tests own the ports.
for svc in nginx redis-server dnsmasq postgresql; do
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
        "${SUDO[@]}" systemctl disable --now "$svc" >/dev/null 2>&1 || true
    elif [ -x "/etc/init.d/$svc" ]; then
        "${SUDO[@]}" "/etc/init.d/$svc" stop >/dev/null 2>&1 || true
    fi
done
pip_install
echo "peers: done"
