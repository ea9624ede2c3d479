# Sourced by the bench scripts: a throwaway Debian `docker-registry` on 127.0.0.1 with its own
# storage under $work. `registry_scratch` makes $work and removes it (and the registry) on
# exit; `start_registry` sets $host and $registry_pid; `stop_registry` ends it. Each start
# takes a new port, so no client can reuse what it remembers about an earlier registry
# (skopeo caches blob locations per host).

registry_scratch() {
  work=$(mktemp -d)
  registry_pid=
  trap 'stop_registry; rm -rf "$work"' EXIT
}

start_registry() {
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  host=127.0.0.1:$port
  rm -rf "$work/storage"
  cat >"$work/config.yml" <<YAML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/storage
http:
  addr: $host
YAML
  docker-registry serve "$work/config.yml" >"$work/registry.log" 2>&1 &
  registry_pid=$!
  for _ in $(seq 100); do
    curl -fsS "http://$host/v2/" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "registry.sh: registry did not start" >&2
  cat "$work/registry.log" >&2
  exit 1
}

stop_registry() {
  if [[ -n ${registry_pid:-} ]]; then
    kill "$registry_pid" 2>/dev/null || true
    wait "$registry_pid" 2>/dev/null || true
  fi
  registry_pid=
}

# The tag of the first manifest of an image layout (what `envpack build --format oci` wrote).
layout_tag() {
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"])' "$1/index.json"
}
