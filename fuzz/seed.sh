#!/usr/bin/env bash
# Seeds the fuzz corpora (fuzz/corpus/parse_check, fuzz/corpus/generate)
# from the schemas already in the repository: QEMU's schema test cases,
# the vendored schemas and the hostile-schema fixtures (files up to 64
# KiB). Nothing is committed: run it before fuzzing. Works from any
# directory.
set -eu
fuzz="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$fuzz")"
for target in parse_check generate; do
  out="$fuzz/corpus/$target"
  mkdir -p "$out"
  n=0
  for f in "$root"/tests/fixtures/qapi-schema/*.json "$root"/schema/*/qapi/*.json \
           "$root"/schema/*/qga/*.json "$root"/qapi-codegen/tests/hostile/*.json \
           "$root"/qapi-codegen/tests/hostile/keywords/*.json; do
    [ -f "$f" ] || continue
    [ "$(stat -c %s "$f")" -le 65536 ] || continue
    rel="${f#"$root"/}"
    cp "$f" "$out/seed-${rel//\//-}"
    n=$((n + 1))
  done
  echo "seeded $out with $n files"
done
