#!/usr/bin/env bash
# `make image-test`: build the image (docker/image-build.sh), then run it as a person would, with podman:
#   - static: docker-format HEALTHCHECK present, a non-root user, no pip registry setting in its config or history;
#   - the API (`serve`, with an API key) and the dashboard (the default command) in two containers, side by side;
#   - wait until both containers' own HEALTHCHECKs pass (`podman healthcheck run`), and the API is ready;
#   - POST a face photo (scikit-image's astronaut, as tests/conftest.py's face_photo, written by the image's own
#     Python) to /v1/analyze with the key: 200 and a verdict; without the key: 401;
#   - `scan` on a mounted folder holding that photo, without network: one result with a verdict;
#   - GET the dashboard's /_stcore/health (200 "ok") and its page;
#   - stop and remove both containers (also on failure).
# The containers share the host's network namespace and listen on 127.0.0.1 only, on free ports.
# The closing line says how long it took (build included) and how large the image is. Not part of `make test`.
# Environment: IMAGE (deepfake-check:latest), PODMAN_RUNTIME (runc), HEALTH_TIMEOUT_S (900), SKIP_BUILD (0).
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${IMAGE:-deepfake-check:latest}
RUNTIME=${PODMAN_RUNTIME:-runc}
HEALTH_TIMEOUT_S=${HEALTH_TIMEOUT_S:-900}
started=$(date +%s)

fail() { echo "image-test: FAILED: $*" >&2; exit 1; }

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  bash docker/image-build.sh
else
  bash docker/podman-setup.sh
fi
podman image exists "$IMAGE" || fail "no image $IMAGE"

# Podman 4 here reports, at error level, that it cannot reach systemd to schedule health checks on a timer: this
# test runs them itself (`podman healthcheck run`), so those lines are noise.
exec 2> >(grep -v --line-buffered 'unable to get systemd connection' >&2)

# --- static properties of the image --------------------------------------------------------------------------
user=$(podman image inspect --format '{{.Config.User}}' "$IMAGE")
case "$user" in ""|root|0|0:*|root:*) fail "the image runs as root (User='$user')";; esac
podman image inspect "$IMAGE" | python3 -c '
import json, sys
image = json.load(sys.stdin)[0]
check = image.get("Healthcheck") or image.get("HealthCheck") or (image.get("Config") or {}).get("Healthcheck")
sys.exit(0 if check and "healthcheck.py" in json.dumps(check) else 1)' \
  || fail "no HEALTHCHECK in $IMAGE (built without --format docker?)"
if podman image inspect --format '{{json .Config.Env}}' "$IMAGE" | grep -q 'PIP_'; then
  fail "a PIP_ setting is in the image's environment"
fi
if podman history --no-trunc --format '{{.CreatedBy}}' "$IMAGE" | grep -Eq 'PIP_(INDEX_URL|EXTRA_INDEX_URL|FIND_LINKS|TRUSTED_HOST|CERT)='; then
  fail "a pip registry setting is in the image's history"
fi
echo "image-test: user $user, HEALTHCHECK set, no pip registry settings in the image"

# --- run it ----------------------------------------------------------------------------------------------------
work=$(mktemp -d)
suffix="$$"
api="deepfake-image-test-api-$suffix"
dash="deepfake-image-test-dashboard-$suffix"
cleanup() {
  podman rm --force --time 20 "$api" "$dash" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
api_port=$(free_port)
dash_port=$(free_port)
while [ "$dash_port" = "$api_port" ]; do dash_port=$(free_port); done
key=$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')

# The face photo of the tests (tests/conftest.py: face_photo), made by the image's scikit-image and Pillow.
podman run --rm --runtime "$RUNTIME" --network none "$IMAGE" python -c '
import io, sys
from PIL import Image
from skimage import data
buf = io.BytesIO()
Image.fromarray(data.astronaut()).save(buf, "JPEG", quality=92)
sys.stdout.buffer.write(buf.getvalue())' > "$work/astronaut.jpg"
[ -s "$work/astronaut.jpg" ] || fail "could not write the face photo"

# --health-interval=disable: no systemd here to run the checks on a timer; `podman healthcheck run` runs the image's.
common=(--detach --runtime "$RUNTIME" --network host --health-interval=disable)
podman run "${common[@]}" --name "$api" \
  -e DEEPFAKE_API_HOST=127.0.0.1 -e DEEPFAKE_API_PORT="$api_port" -e DEEPFAKE_API_KEY="$key" \
  "$IMAGE" serve >/dev/null
podman run "${common[@]}" --name "$dash" \
  -e STREAMLIT_SERVER_ADDRESS=127.0.0.1 -e STREAMLIT_SERVER_PORT="$dash_port" \
  "$IMAGE" >/dev/null
echo "image-test: started $api (127.0.0.1:$api_port) and $dash (127.0.0.1:$dash_port)"

wait_healthy() {   # name
  local name=$1 deadline=$(( $(date +%s) + HEALTH_TIMEOUT_S )) t0
  t0=$(date +%s)
  while :; do
    if [ "$(podman inspect --format '{{.State.Running}}' "$name")" != true ]; then
      podman logs "$name" 2>&1 | tail -n 40 >&2
      fail "$name stopped before it was healthy"
    fi
    if podman healthcheck run "$name" >/dev/null 2>&1; then
      echo "image-test: $name healthy after $(( $(date +%s) - t0 )) s"
      return 0
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
      podman logs "$name" 2>&1 | tail -n 40 >&2
      fail "$name not healthy within $HEALTH_TIMEOUT_S s"
    fi
    sleep 3
  done
}
wait_healthy "$api"
wait_healthy "$dash"

# The API: ready (detectors loaded), a face photo analysed with the key, refused without it.
code=$(curl -sS -o "$work/ready.json" -w '%{http_code}' "http://127.0.0.1:$api_port/readyz") || code=000
[ "$code" = 200 ] || { cat "$work/ready.json" >&2 || true; fail "GET /readyz answered $code"; }
code=$(curl -sS -o "$work/report.json" -w '%{http_code}' -H "X-API-Key: $key" \
  -F "file=@$work/astronaut.jpg;type=image/jpeg" "http://127.0.0.1:$api_port/v1/analyze") || code=000
[ "$code" = 200 ] || { head -c 2000 "$work/report.json" >&2 || true; fail "POST /v1/analyze answered $code"; }
python3 - "$work/report.json" "$work/ready.json" <<'PY' || fail "the API's report has no verdict for the face"
import json, sys
report, ready = (json.load(open(p)) for p in sys.argv[1:3])
faces = report.get("faces") or []
assert report.get("verdict") in {"FAKE", "REAL", "UNCERTAIN"}, report.get("verdict")
assert faces and all(f.get("verdict") in {"FAKE", "REAL", "UNCERTAIN"} for f in faces), faces
print(f"image-test: POST /v1/analyze -> 200, verdict {report['verdict']} (probability "
      f"{report.get('probability', float('nan')):.3f}), {len(faces)} face(s), detectors {', '.join(ready['detectors'])}")
PY
code=$(curl -sS -o /dev/null -w '%{http_code}' -F "file=@$work/astronaut.jpg" \
  "http://127.0.0.1:$api_port/v1/analyze") || code=000
[ "$code" = 401 ] || fail "POST /v1/analyze without the key answered $code, not 401"
echo "image-test: without the API key -> 401"

# The batch scanner, offline, on a mounted folder (as the README shows it).
mkdir -p "$work/scan/in"
cp "$work/astronaut.jpg" "$work/scan/in/"
chmod -R a+rwX "$work/scan"
podman run --rm --runtime "$RUNTIME" --network none -v "$work/scan:/data" "$IMAGE" \
  scan /data/in --out /data/results.jsonl --workers 1 --no-progress >/dev/null 2>"$work/scan.log" \
  || { tail -n 20 "$work/scan.log" >&2; fail "scan failed"; }
python3 - "$work/scan/results.jsonl" <<'PY' || fail "scan wrote no verdict"
import json, sys
lines = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
assert len(lines) == 1 and lines[0].get("verdict") in {"FAKE", "REAL", "UNCERTAIN"}, lines
print(f"image-test: scan -> 1 file, verdict {lines[0]['verdict']}")
PY

# The dashboard: its health endpoint and its page.
code=$(curl -sS -o "$work/health.txt" -w '%{http_code}' "http://127.0.0.1:$dash_port/_stcore/health") || code=000
[ "$code" = 200 ] && grep -q ok "$work/health.txt" || fail "GET /_stcore/health answered $code"
code=$(curl -sS -o "$work/index.html" -w '%{http_code}' "http://127.0.0.1:$dash_port/") || code=000
[ "$code" = 200 ] || fail "GET / (dashboard) answered $code"
echo "image-test: dashboard GET /_stcore/health -> 200 ok, GET / -> 200"

# Both containers still healthy, and they stop when asked.
podman healthcheck run "$api" >/dev/null 2>&1 || fail "$api unhealthy after the analysis"
podman healthcheck run "$dash" >/dev/null 2>&1 || fail "$dash unhealthy at the end"
podman stop --time 20 "$api" "$dash" >/dev/null
podman rm "$api" "$dash" >/dev/null
echo "image-test: containers stopped and removed"

size=$(podman image inspect --format '{{.Size}}' "$IMAGE")
elapsed=$(( $(date +%s) - started ))
printf 'image-test: passed in %dm%02ds (%d s); image %s is %s\n' $(( elapsed / 60 )) $(( elapsed % 60 )) "$elapsed" \
  "$IMAGE" "$(awk -v b="$size" 'BEGIN{printf "%.2f GB (%.0f bytes)", b/1e9, b}')"
