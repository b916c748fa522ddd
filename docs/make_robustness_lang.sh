#!/usr/bin/env bash
# docs/robustness-lang.md ('striped') and docs/robustness-lang-circle.md (a shape) on the language
# toy world (issue 24): the core grid with every trained eraser over 3 seeds, attacked freely and
# through held-out words only, with the route attack. Resumable: run it again after a stop.
# About 70 min a concept on 2 CPU cores (an estimate from the toy world's pages; the pages state
# their own times).
set -euo pipefail
cd "$(dirname "$0")/.."
ATTACKS=unlearndiff,ringabell,routes,unlearndiff-heldout,ringabell-heldout
for pair in "striped:robustness-lang" "circle:robustness-lang-circle"; do
  c=${pair%%:*} page=${pair#*:}
  .venv/bin/workbench robustness --model toy-lang --concept "lang:$c" --core --every-eraser --seeds 0,1,2 \
    --attacks "$ATTACKS" --attack-budget 50 --work "stores/$page" --out "docs/$page.md"
done
