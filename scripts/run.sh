#!/bin/sh
# `make run`: ingest the sample corpus (this README and docs/) into the
# default collection, then serve on the embedded defaults.
set -eu
cd "$(dirname "$0")/.."
DATA=${SLORAG_DATA_DIR:-./var}
./build/slorag ingest --data "$DATA" --collection default README.md docs
exec ./build/slorag serve --data "$DATA" "$@"
