#!/usr/bin/env bash
# Builds harnvm's Linux release wheels the way .github/workflows/release.yml
# does, and checks each one: platform tag (manylinux/musllinux, never the
# plain linux_* tag PyPI refuses), abi3, a stripped extension module, and
# auditwheel's verdict on the symbols it links.
#
#   scripts/build-wheels.sh                      # manylinux x86_64 (the default)
#   TARGETS="x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu \
#            x86_64-unknown-linux-musl aarch64-unknown-linux-musl" scripts/build-wheels.sh
#
# Needs Rust (rustup, to add cross targets) and Python >= 3.11; maturin,
# ziglang (the zig cross-linker, from PyPI) and auditwheel are pip-installed
# into the current environment. Wheels land in dist/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

TARGETS=${TARGETS:-x86_64-unknown-linux-gnu}
OUT=${OUT:-dist}

python -m pip install -q "maturin>=1.9.4,<2" ziglang auditwheel

for target in $TARGETS; do
  if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx "$target"; then
    rustup target add "$target"
  fi
  case "$target" in
    *-musl) compat=musllinux_1_2 ;;
    *) compat=manylinux2014 ;;
  esac
  echo "== building $target ($compat)"
  python -m maturin build --release --strip --zig --target "$target" --compatibility "$compat" --out "$OUT"
done

status=0
for wheel in "$OUT"/*.whl; do
  name=$(basename "$wheel")
  echo "== checking $name"
  case "$name" in
    *-abi3-manylinux*|*-abi3-musllinux*) ;;
    *) echo "FAIL: $name is not an abi3 manylinux/musllinux wheel"; status=1 ;;
  esac
  python -m auditwheel show "$wheel" || status=1
  python scripts/check_wheel.py "$wheel" || status=1
done
exit $status
