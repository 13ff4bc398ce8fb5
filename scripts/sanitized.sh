#!/usr/bin/env bash
# The native addon under AddressSanitizer and UBSan: builds build-san/Release/tessera.node
# (CMake option TESSERA_SANITIZE, CPU backend only) and runs commands against it, with gcc's
# ASan runtime preloaded into Node (which is not instrumented itself, so the runtime must be
# the first library loaded) and TESSERA_ADDON_PATH pointing lib/native.ts at that addon.
#   scripts/sanitized.sh build                     configure and build build-san/
#   scripts/sanitized.sh run CMD [ARGS...]         run CMD with the sanitizer environment, e.g.
#     scripts/sanitized.sh run npx vitest run test/kernels
#     scripts/sanitized.sh run node dist/dev/fuzz-models.js case --seed S --index I
#   scripts/sanitized.sh env                       print that environment as shell assignments
# Any sanitizer report aborts the process with a non-zero status; the report is on stderr.
# TESSERA_SANITIZE overrides the sanitizer list (default address,undefined).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
sanitize="${TESSERA_SANITIZE:-address,undefined}"
jobs="${TESSERA_BUILD_JOBS:-2}"

sanitizer_env() {
  local asan
  asan="$(${CXX:-g++} -print-file-name=libasan.so)"
  if [ ! -e "$asan" ]; then
    echo "sanitized.sh: the compiler has no libasan.so ($asan)" >&2
    return 1
  fi
  echo "LD_PRELOAD=$asan"
  echo "TESSERA_ADDON_PATH=$root/build-san/Release/tessera.node"
  # detect_leaks=0: V8 and Node keep allocations to exit by design. abort_on_error: a report
  # ends the process at once (no core file), like a crash. No ODR check: node-addon-api's
  # inline symbols are defined once per addon on purpose.
  echo "ASAN_OPTIONS=detect_leaks=0:halt_on_error=1:abort_on_error=1:disable_coredump=1:detect_odr_violation=0:${ASAN_OPTIONS:-}"
  echo "UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:${UBSAN_OPTIONS:-}"
}

case "${1:-}" in
  build)
    # Configured once (again when TESSERA_SANITIZE is given); later builds recompile only what
    # changed (cmake reconfigures itself when CMakeLists.txt does), so npm test pays for the
    # whole build on a fresh clone only.
    [ -f build-san/CMakeFiles/Makefile.cmake ] && [ -z "${TESSERA_SANITIZE:-}" ] || cmake -S . -B build-san -DCMAKE_BUILD_TYPE=Release -DTESSERA_CUDA=OFF -DTESSERA_SANITIZE="$sanitize" \
      -DCMAKE_LIBRARY_OUTPUT_DIRECTORY="$root/build-san/Release" \
      -DCMAKE_JS_INC="$(node -p 'require("node-api-headers").include_dir')" >/dev/null
    cmake --build build-san -j "$jobs"
    ;;
  env)
    sanitizer_env
    ;;
  run)
    shift
    [ -f build-san/Release/tessera.node ] || { echo "sanitized.sh: no build-san/Release/tessera.node; run scripts/sanitized.sh build" >&2; exit 1; }
    vars="$(sanitizer_env)"
    while IFS= read -r line; do export "${line?}"; done <<<"$vars"
    exec "$@"
    ;;
  *)
    sed -n '2,13p' "$0" >&2
    exit 2
    ;;
esac
