"""Write docs/errors.md from the messages the bad inputs of tests/helpers/error_cases.py really
produce (about a minute on 2 cores): `python docs/make_errors.py`."""

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))

from helpers.error_cases import CASES, DOC, make_world, render, run_case  # noqa: E402


def main() -> None:
    from workbench.models import load_pipeline

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "world").mkdir()
        world = make_world(load_pipeline("toy"), root / "world")
        messages = {}
        for case in CASES:
            scratch = root / case.key
            scratch.mkdir()
            rc, err = run_case(case, world, scratch)
            lines = [line for line in err.splitlines() if line.strip()]
            if rc != 2 or len(lines) != 1:
                raise SystemExit(f"case {case.key}: exit {rc}, stderr {err!r}: fix it before writing the page")
            messages[case.key] = lines[0].removeprefix("workbench: error: ")
    DOC.write_text(render(messages))
    print(DOC)


if __name__ == "__main__":
    main()
