#!/usr/bin/env bash
# Machine set-up for `make image` / `make image-test`, idempotent: each step only when it is missing.
# - podman, mmdebstrap and runc from Debian's packages (apt-get, as root);
# - /etc/containers/containers.conf with `default_ulimits = []` in [containers]: podman's default ulimits cannot be
#   applied on these machines, so without it every container fails to start.
# Podman must then be run with `--runtime runc` here (image-build.sh and image-test.sh do).
set -euo pipefail

need=()
command -v podman >/dev/null 2>&1 || need+=(podman)
command -v mmdebstrap >/dev/null 2>&1 || need+=(mmdebstrap)
command -v runc >/dev/null 2>&1 || need+=(runc)
if [ "${#need[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "podman-setup: missing ${need[*]}; install them (Debian: apt-get install ${need[*]})" >&2
    exit 1
  fi
  echo "podman-setup: installing ${need[*]} with apt-get"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

CONF=/etc/containers/containers.conf
if [ "$(id -u)" -eq 0 ]; then
  mkdir -p /etc/containers
  if [ ! -f "$CONF" ]; then
    printf '[containers]\ndefault_ulimits = []\n' > "$CONF"
    echo "podman-setup: wrote $CONF (default_ulimits = [])"
  elif ! grep -Eq '^[[:space:]]*default_ulimits[[:space:]]*=' "$CONF"; then
    if grep -Eq '^[[:space:]]*\[containers\]' "$CONF"; then
      sed -i '0,/^[[:space:]]*\[containers\]/s//[containers]\ndefault_ulimits = []/' "$CONF"
    else
      printf '\n[containers]\ndefault_ulimits = []\n' >> "$CONF"
    fi
    echo "podman-setup: set default_ulimits = [] in $CONF"
  fi
fi
