#!/usr/bin/env bash
# Builds pam_xcauth in release mode and installs it as pam_xcauth.so in the distribution's
# PAM module directory: $PREFIX/lib/<multiarch>/security/pam_xcauth.so, mode 0644.
#
#   scripts/install-pam.sh                 # installs to /lib/x86_64-linux-gnu/security (Debian)
#   scripts/install-pam.sh --prefix DIR    # installs to DIR/lib/<multiarch>/security (staging)
#   scripts/install-pam.sh --no-build ...  # installs an already built target/release .so
#
# Needs cargo and libpam0g-dev (for the -lpam link). Example service files: pam.d-examples/.
set -euo pipefail

prefix=""
build=1
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) [ $# -ge 2 ] || { echo "install-pam: --prefix needs a directory" >&2; exit 2; }
              prefix="$2"; shift 2 ;;
    --prefix=*) prefix="${1#--prefix=}"; shift ;;
    --no-build) build=0; shift ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "install-pam: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done

root="$(cd "$(dirname "$0")/.." && pwd)"

multiarch=""
if command -v dpkg-architecture >/dev/null 2>&1; then
  multiarch="$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || true)"
fi
if [ -z "$multiarch" ] && command -v gcc >/dev/null 2>&1; then
  multiarch="$(gcc -print-multiarch 2>/dev/null || true)"
fi
if [ -n "$multiarch" ]; then
  secdir="$prefix/lib/$multiarch/security"
else
  # Distributions without multiarch (Fedora, Arch) keep modules in lib64 or lib.
  if [ -d /lib64/security ]; then secdir="$prefix/lib64/security"; else secdir="$prefix/lib/security"; fi
fi

target_dir="${CARGO_TARGET_DIR:-$root/target}"
if [ "$build" = 1 ]; then
  (cd "$root" && cargo build --release --locked -p pam_xcauth)
fi
so="$target_dir/release/libpam_xcauth.so"
[ -f "$so" ] || { echo "install-pam: $so not found (build failed or --no-build without a build)" >&2; exit 1; }

install -d -m 0755 "$secdir"
# Copy to a temporary name and rename, so a running saslauthd/Apache never loads a half-written file.
install -m 0644 "$so" "$secdir/.pam_xcauth.so.new"
mv -f "$secdir/.pam_xcauth.so.new" "$secdir/pam_xcauth.so"
echo "installed $secdir/pam_xcauth.so"
