#!/bin/sh
# Resolve the models at start, then run the command (by default `kdaug serve`).
# With KDAUG_MLM=default, kdaug's default MLM is built into $KDAUG_CACHE unless it is there
# already (baked into the image with BAKE_MLM=1, or kept on a volume from an earlier start).
set -eu
if [ "${KDAUG_MLM:-default}" = "default" ]; then
  kdaug adapt-mlm --default
fi
exec "$@"
