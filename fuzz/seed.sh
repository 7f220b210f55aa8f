#!/usr/bin/env bash
# Seeds the fuzz corpus from the real schemas and QEMU's schema test cases
# (files up to 64 KiB). Run from the workspace root.
set -eu
out=fuzz/corpus/parse_check
mkdir -p "$out"
for f in tests/fixtures/qapi-schema/*.json schema/qapi/*.json schema/qga/*.json; do
  [ "$(stat -c %s "$f")" -le 65536 ] || continue
  cp "$f" "$out/seed-$(basename "$(dirname "$f")")-$(basename "$f")"
done
