#!/usr/bin/env bash
# The single-word toy world's per-concept robustness pages (issue 22) under the reference protocol
# and the harm protocol: the core grid, one seed (15 cells), no attacks (the attacked pages are the
# language world's, docs/robustness-lang*.md, and docs/robustness-cached.md). Resumable: run it again
# after a stop. Each page states how long its cells took.
# CONCEPTS="circle dotted" bash docs/make_robustness_toy.sh runs a few.
set -euo pipefail
cd "$(dirname "$0")/.."
for c in ${CONCEPTS:-checkered circle dotted triangle}; do
  .venv/bin/workbench robustness --core --concept "$c" --work "stores/robustness-$c" --out "docs/robustness-$c.md"
done
