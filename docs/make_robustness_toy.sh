#!/usr/bin/env bash
# The single-word toy world's per-concept robustness pages (issue 22) under the reference protocol
# and the harm protocol: the core grid (15 cells; seeds 1 and 2 repeat ESD-x's and P-ESD's main
# settings), no attacks (docs/robustness.md has the attacked 'striped' page). Resumable: run it again
# after a stop. About 45 min a concept on 2 CPU cores; the pages state their own times.
# CONCEPTS="circle dotted" bash docs/make_robustness_toy.sh runs a few.
set -euo pipefail
cd "$(dirname "$0")/.."
for c in ${CONCEPTS:-checkered circle dotted triangle}; do
  .venv/bin/workbench robustness --core --concept "$c" --work "stores/robustness-$c" --out "docs/robustness-$c.md"
done
