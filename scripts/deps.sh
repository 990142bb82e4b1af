#!/usr/bin/env bash
# `make deps`: the Debian packages of packages-build.txt and console/lab/packages.txt (the lab's
# servers and the browser); `scripts/deps.sh build` (make run): packages-build.txt only.
# As root, installs the missing ones (apt-get update only when something is missing); otherwise
# names them and exits 1.
set -euo pipefail
cd "$(dirname "$0")/.."

lists=(packages-build.txt console/lab/packages.txt)
[[ ${1:-} == build ]] && lists=(packages-build.txt)
mapfile -t packages < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' -e '/^$/d' "${lists[@]}")
missing=()
for package in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$package" 2>/dev/null || true)
    [[ $status == ii* ]] || missing+=("$package")
done

if ((${#missing[@]} == 0)); then
    echo "deps: all ${#packages[@]} Debian packages are installed"
    exit 0
fi
if ((EUID != 0)); then
    echo "deps: missing Debian packages: ${missing[*]}" >&2
    echo "deps: install them as root (make deps) or with: apt-get install ${missing[*]}" >&2
    exit 1
fi

echo "deps: installing ${missing[*]}"
# The lab runs its own slapd; the system one must not be configured.
echo "slapd slapd/no_configuration boolean true" | debconf-set-selections
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q "${missing[@]}"
