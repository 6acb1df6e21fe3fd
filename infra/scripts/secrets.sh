#!/usr/bin/env bash
# Creates every secret stack.yml mounts, for OpenFaaS or Knative, from a directory holding
# one file per secret (named as the secret). Nothing is created unless every file exists,
# so a deploy never meets a missing secret half-way.
#
#   secrets.sh list                       the names stack.yml mounts (one per line)
#   secrets.sh openfaas DIR [NAMESPACE]   faas-cli secret create … --replace  [openfaas-fn]
#   secrets.sh knative  DIR [NAMESPACE]   kubectl create secret generic (applied)  [sscard]
#
# `make secrets SECRETS_DIR=… PLATFORM=openfaas|knative` runs it. docs/deploying.md says
# what each secret holds; infra/cmd/keygen makes the key pairs and keys.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

names() { # secret names listed under any function's `secrets:` in stack.yml, sorted, unique
	awk '/^    secrets:/ {in_s=1; next} in_s && /^      - / {sub(/^      - /, ""); sub(/[ \t]*#.*/, ""); print; next} {in_s=0}' \
		"$ROOT/stack.yml" | sort -u
}

check_dir() {
	local dir=$1 missing=()
	[ -d "$dir" ] || { echo "secrets: $dir is not a directory" >&2; exit 2; }
	for n in $(names); do [ -s "$dir/$n" ] || missing+=("$n"); done
	if [ ${#missing[@]} -gt 0 ]; then
		echo "secrets: missing in $dir (nothing created): ${missing[*]}" >&2
		exit 1
	fi
}

case "${1:-}" in
list) names ;;
openfaas)
	dir=${2:?directory}; ns=${3:-openfaas-fn}; check_dir "$dir"
	for n in $(names); do
		faas-cli secret create "$n" --from-file="$dir/$n" --namespace "$ns" --replace >/dev/null
		echo "created $n"
	done ;;
knative)
	dir=${2:?directory}; ns=${3:-sscard}; check_dir "$dir"
	for n in $(names); do
		kubectl -n "$ns" create secret generic "$n" --from-file="$n=$dir/$n" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
		echo "created $n"
	done ;;
*) sed -n '2,12p' "$0" >&2; exit 2 ;;
esac
