#!/usr/bin/env bash
# `make image`: build the container image with podman on a machine without Docker and without access to a container
# registry (as this project's machines):
#   1. machine set-up (docker/podman-setup.sh: podman, mmdebstrap, runc; containers.conf default_ulimits = []);
#   2. the base image the Dockerfile names (ARG BASE_IMAGE, debian:bookworm-slim), when it is not there yet:
#      mmdebstrap builds a minimal Debian rootfs from this machine's package mirror (its apt sources) and
#      `podman import` tags it with that name (REBUILD_BASE=1 makes it again);
#   3. `podman build --runtime runc --format docker` (docker format: OCI images drop HEALTHCHECK), with this machine's
#      pip registry settings (`pip config list` and PIP_* variables) passed as build arguments: local folders they
#      name (file:// indexes, find-links folders) served on 127.0.0.1 during the build, the CA bundle as the build
#      secret `pip-ca`. Nothing of them is written into the image.
# Environment: IMAGE (default deepfake-check:latest), PODMAN_RUNTIME (runc), DEBIAN_SUITE (bookworm),
# DEBIAN_SOURCES (the apt sources file for mmdebstrap; default: this machine's debian.sources, else Debian's mirror),
# BUILD_NETWORK (host; the local pip folders are served on the host's loopback), PIP_MIRROR_PORT (38741),
# REBUILD_BASE (0).
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
# This machine's settings (`pip config list`, PIP_* variables) become build arguments. Local folders they name
# (file:// indexes, find-links folders) are served read-only over HTTP on 127.0.0.1 for the time of the build, and
# the settings are rewritten to those URLs (the build shares the host's network), so nothing is mounted into the
# image's file system; pip's CA bundle (PIP_CERT) is the build secret `pip-ca`.
# The helper prints one option per line (--build-arg=..., --secret=...) and `serve PATH` per local folder.
MIRROR_PORT=${PIP_MIRROR_PORT:-38741}   # fixed, so that the build arguments (and the layer cache) stay the same
if ! python3 -c 'import socket, sys; s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1])))' "$MIRROR_PORT" 2>/dev/null; then
  MIRROR_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  echo "image-build: port ${PIP_MIRROR_PORT:-38741} is taken; serving the local pip folders on $MIRROR_PORT (no layer cache)"
fi
python3 - "$MIRROR_PORT" > "$tmp/pip-args" <<'PY'
import ast, os, re, subprocess, sys

port = sys.argv[1]
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
served = []
def local_url(name, word):
    """The loopback URL for a local folder (and that folder served), or the word unchanged."""
    path = word[len("file://"):] if word.startswith("file://") else (word if word.startswith("/") else None)
    if path is None or not os.path.exists(path):
        return word
    path = os.path.normpath(path)
    root = path
    if name != "PIP_FIND_LINKS" and os.path.basename(path) == "simple":
        root = os.path.dirname(path)   # <root>/simple/<project>/ links to files beside it (../../files/...)
    if root not in served:
        served.append(root)
    return f"http://127.0.0.1:{port}{path}/"
cert = settings.pop("PIP_CERT", None)
for name in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS"):
    if name in settings:
        settings[name] = " ".join(local_url(name, w) for w in settings[name].split())
for name in sorted(set(KEYS.values()) - {"PIP_CERT"}):   # each one the Dockerfile declares; an empty one is unset there
    print(f"--build-arg={name}={settings.get(name, '')}")
if cert and os.path.isfile(cert):
    print(f"--secret=id=pip-ca,src={cert}")
for root in served:
    print(f"serve {root}")
PY
pip_args=()
mirror_pid=""
while IFS= read -r line; do
  case "$line" in
    "serve "*)
      path=${line#serve }
      mkdir -p "$tmp/www$(dirname "$path")"
      ln -s "$path" "$tmp/www$path"
      ;;
    *) pip_args+=("$line") ;;
  esac
done < "$tmp/pip-args"
if [ -d "$tmp/www" ]; then
  python3 -m http.server --bind 127.0.0.1 --directory "$tmp/www" "$MIRROR_PORT" >"$tmp/mirror.log" 2>&1 &
  mirror_pid=$!
  trap 'kill "$mirror_pid" 2>/dev/null || true; rm -rf "$tmp"' EXIT
  for _ in $(seq 50); do
    curl -fsS -o /dev/null "http://127.0.0.1:$MIRROR_PORT/" 2>/dev/null && break
    sleep 0.2
  done
fi
if [ "${#pip_args[@]}" -gt 0 ]; then
  echo "image-build: pip settings for the build: ${pip_args[*]}"
fi

# --- 4. the image -----------------------------------------------------------------------------------------------
echo "image-build: podman build -> $IMAGE"
podman build --runtime "$RUNTIME" --format docker --layers --pull=never --network "$BUILD_NETWORK" \
  "${pip_args[@]}" -t "$IMAGE" -f Dockerfile .

size=$(podman image inspect --format '{{.Size}}' "$IMAGE")
echo "image-build: $IMAGE built in $(( $(date +%s) - started )) s, $(awk -v b="$size" 'BEGIN{printf "%.2f GB", b/1e9}')"
