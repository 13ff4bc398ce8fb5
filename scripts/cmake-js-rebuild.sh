#!/bin/sh
# prebuildify drives node-gyp; this stands in for it (`--node-gyp`), ignoring node-gyp's
# arguments, so the prebuild is the same cmake-js build `npm install` makes (N-API, no
# headers to download).
cd "$(dirname "$0")/.." && exec node node_modules/cmake-js/bin/cmake-js rebuild --log-level warn
