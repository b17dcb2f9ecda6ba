#!/bin/sh
# Run the command (by default `kdaug serve`), first building kdaug's default MLM into
# $KDAUG_CACHE when the command will load it and it is not there yet (baked into the image with
# BAKE_MLM=1, or kept on a volume from an earlier start): `kdaug serve` with KDAUG_MLM=default
# (the images' setting) and no other --mlm, and `kdaug serve|augment|sample --mlm default`.
# Other commands (distill, export, --help, ...) start at once.
set -eu

uses_default_mlm() {
  [ "${1:-}" = kdaug ] || return 1
  shift
  while [ $# -gt 0 ]; do # options before the command (-v, -q)
    case "$1" in -*) shift ;; *) break ;; esac
  done
  command="${1:-}"
  [ $# -gt 0 ] && shift
  case "$command" in
    serve) mlm="${KDAUG_MLM:-default}" ;; # the service reads KDAUG_MLM
    augment | sample) mlm="" ;;           # their --mlm default is a hub name
    *) return 1 ;;
  esac
  while [ $# -gt 0 ]; do
    case "$1" in
      -h | --help) return 1 ;;
      --mlm) mlm="${2:-}" && [ $# -gt 1 ] && shift ;;
      --mlm=*) mlm="${1#--mlm=}" ;;
      --) break ;;
    esac
    shift
  done
  [ "$mlm" = default ]
}

if uses_default_mlm "$@"; then
  kdaug adapt-mlm --default # returns at once when the MLM is built and its inputs unchanged
fi
exec "$@"
