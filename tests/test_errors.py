"""Every bad input of docs/errors.md: one line on stderr naming the problem and the fix, exit 2,
nothing half-made left behind, and the very message the page states. The cases live in
tests/helpers/error_cases.py; docs/make_errors.py writes the page from them."""

import re

import pytest
from helpers.error_cases import CASES, DOC, HEAD, TAIL, make_world, messages_in, render, row, run_case


@pytest.fixture(scope="module")
def world(toy, tmp_path_factory):
    return make_world(toy, tmp_path_factory.mktemp("errors"))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.key)
def test_bad_input_gets_one_clear_line_the_one_the_doc_states(case, world, tmp_path):
    rc, err = run_case(case, world, tmp_path)
    assert rc == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("workbench: error: "), err
    message = lines[0].removeprefix("workbench: error: ")
    assert re.search(case.expect, message), message
    assert row(case, message) in DOC.read_text().splitlines(), (
        f"docs/errors.md does not state this message for {case.key!r}: regenerate it with `python docs/make_errors.py`"
    )


def test_the_doc_has_one_row_per_case_and_nothing_else():
    text = DOC.read_text()
    assert text.startswith(HEAD) and text.endswith(TAIL)
    stated = messages_in(text)
    assert len(stated) == len(CASES)
    assert render(stated) == text, "docs/errors.md has rows of other cases, or in another order: `python docs/make_errors.py`"


def test_no_message_carries_bytes_a_machine_computes():
    """Checksums and stored bytes differ between CPUs: a message must not quote them."""
    for key, message in messages_in(DOC.read_text()).items():
        assert not re.search(r"\bb'|\\x[0-9a-f]{2}|checksum.*Computed", message), key
