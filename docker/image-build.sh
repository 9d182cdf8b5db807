#!/usr/bin/env bash
# `make image`: build the container image with podman on a machine without Docker and without access to a container
# registry (as this project's machines):
#   1. machine set-up (docker/podman-setup.sh: podman, mmdebstrap, runc; containers.conf default_ulimits = []);
#   2. the base image the Dockerfile names (ARG BASE_IMAGE, debian:bookworm-slim), when it is not there yet:
#      mmdebstrap builds a minimal Debian rootfs from this machine's package mirror (its apt sources) and
#      `podman import` tags it with that name (REBUILD_BASE=1 makes it again);
#   3. `podman build --runtime runc --format docker` (docker format: OCI images drop HEALTHCHECK), with this machine's
#      pip registry settings (`pip config list` and PIP_* variables) passed as build arguments, and the local
#      folders and files they name (file:// indexes, find-links folders, the CA bundle) mounted read-only for the
#      build only. Nothing of them is written into the image.
# Environment: IMAGE (default deepfake-check:latest), PODMAN_RUNTIME (runc), DEBIAN_SUITE (bookworm),
# DEBIAN_SOURCES (the apt sources file for mmdebstrap; default: this machine's debian.sources, else Debian's mirror),
# BUILD_NETWORK (host), REBUILD_BASE (0).
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${IMAGE:-deepfake-check:latest}
RUNTIME=${PODMAN_RUNTIME:-runc}
SUITE=${DEBIAN_SUITE:-bookworm}
SOURCES=${DEBIAN_SOURCES:-/etc/apt/sources.list.d/debian.sources}
BUILD_NETWORK=${BUILD_NETWORK:-host}
BASE_IMAGE=$(sed -n 's/^ARG BASE_IMAGE=//p' Dockerfile | head -n 1)
[ -n "$BASE_IMAGE" ] || { echo "image-build: no 'ARG BASE_IMAGE=' in Dockerfile" >&2; exit 1; }

bash docker/podman-setup.sh

started=$(date +%s)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# --- 2. the base image ----------------------------------------------------------------------------------------
if [ "${REBUILD_BASE:-0}" = 1 ] || ! podman image exists "$BASE_IMAGE"; then
  mirror=()
  if [ -f "$SOURCES" ]; then
    mirror=("$SOURCES")   # mmdebstrap pastes an existing file (deb822 too) as the rootfs's apt sources
  fi
  echo "image-build: mmdebstrap $SUITE (minbase) -> $BASE_IMAGE"
  # like debian:*-slim: no recommends, no man pages, docs or translations
  mmdebstrap --variant=minbase --quiet \
    --aptopt='APT::Install-Recommends "false"' \
    --aptopt='APT::Install-Suggests "false"' \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/lintian/*' \
    "$SUITE" "$tmp/rootfs.tar" "${mirror[@]}"
  podman import --quiet \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' \
    "$tmp/rootfs.tar" "$BASE_IMAGE" >/dev/null
  rm -f "$tmp/rootfs.tar"
else
  echo "image-build: base $BASE_IMAGE is there (REBUILD_BASE=1 makes it again)"
fi

# --- 3. pip's registry settings as build arguments --------------------------------------------------------------
# One option per line: --build-arg=PIP_...=value or --volume=PATH:PATH:ro
python3 - > "$tmp/pip-args" <<'PY'
import ast, os, re, subprocess, sys

KEYS = {"index-url": "PIP_INDEX_URL", "extra-index-url": "PIP_EXTRA_INDEX_URL", "find-links": "PIP_FIND_LINKS",
        "trusted-host": "PIP_TRUSTED_HOST", "cert": "PIP_CERT", "default-timeout": "PIP_DEFAULT_TIMEOUT",
        "timeout": "PIP_DEFAULT_TIMEOUT"}
try:
    out = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True,
                         check=True).stdout
except (OSError, subprocess.CalledProcessError):
    out = ""   # no pip here: PyPI, pip's default
settings = {}
for line in out.splitlines():   # e.g. global.extra-index-url='file:///opt/pypi/simple'  :env:.find-links='/opt/wheels'
    m = re.match(r"^(.*?)\.([a-z-]+)=(.*)$", line)
    if m and m.group(2) in KEYS:
        settings[KEYS[m.group(2)]] = str(ast.literal_eval(m.group(3)))   # later lines (env) override earlier
mounts = []
def mount(path):
    path = os.path.normpath(path)
    if os.path.exists(path) and path not in mounts:
        mounts.append(path)
# The CA bundle goes to a path of its own: mounted over the image's /etc/ssl/certs it would keep Debian's
# ca-certificates from installing.
cert_mount = None
if settings.get("PIP_CERT") and os.path.isfile(settings["PIP_CERT"]):
    cert_mount = (settings["PIP_CERT"], "/run/pip-build-ca/" + os.path.basename(settings["PIP_CERT"]))
    settings["PIP_CERT"] = cert_mount[1]
for name, value in settings.items():
    if name == "PIP_CERT":
        continue
    for word in value.split():
        path = word[len("file://"):] if word.startswith("file://") else (word if word.startswith("/") else None)
        if path is None:
            continue
        if name in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL") and os.path.basename(path.rstrip("/")) == "simple":
            path = os.path.dirname(path.rstrip("/"))   # <root>/simple links to files beside it (../../files/...)
        mount(path)
for name in sorted(set(KEYS.values())):   # every one the Dockerfile declares; an empty one is unset there
    print(f"--build-arg={name}={settings.get(name, '')}")
for path in sorted(mounts):
    if not any(path != other and path.startswith(other.rstrip("/") + "/") for other in mounts):
        print(f"--volume={path}:{path}:ro")
if cert_mount:
    print(f"--volume={cert_mount[0]}:{cert_mount[1]}:ro")
PY
mapfile -t pip_args < "$tmp/pip-args"
if [ "${#pip_args[@]}" -gt 0 ]; then
  echo "image-build: pip settings for the build: ${pip_args[*]}"
fi

# --- 4. the image -----------------------------------------------------------------------------------------------
echo "image-build: podman build -> $IMAGE"
podman build --runtime "$RUNTIME" --format docker --layers --pull=never --network "$BUILD_NETWORK" \
  "${pip_args[@]}" -t "$IMAGE" -f Dockerfile .

size=$(podman image inspect --format '{{.Size}}' "$IMAGE")
echo "image-build: $IMAGE built in $(( $(date +%s) - started )) s, $(awk -v b="$size" 'BEGIN{printf "%.2f GB", b/1e9}')"
