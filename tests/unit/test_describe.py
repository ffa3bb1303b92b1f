"""``lm.describe()``: the text by message, each message's cost, captures and totals."""

from __future__ import annotations

import io

from rudder import assistant, gen, models, select, system, user
from rudder._describe import messages


def program() -> models.Model:
    lm = models.Mock(["Paris is lovely.", "yes"])
    with system():
        lm += "Be terse."
    with user():
        lm += "Where is\nParis?"
    with assistant():
        lm += "Answer: " + gen("answer", stop=".", max_tokens=20) + ". Sure? "
        lm += select(["yes", "no"], name="sure")
    return lm + " Done."


def test_messages_split_the_text_by_role_and_count_generations_where_they_wrote() -> None:
    lm = program()
    found = messages(lm)
    assert [(m.role, m.text) for m in found] == [
        ("system", "Be terse."),
        ("user", "Where is\nParis?"),
        ("assistant", f"Answer: {lm['answer']}. Sure? {lm['sure']}"),
        (None, " Done."),
    ]
    assert [m.usage.generations for m in found] == [0, 0, 2, 0]
    assert found[2].usage.output_tokens == lm.usage.output_tokens > 0


def test_describe_prints_messages_figures_and_captures_and_str_stays_the_text() -> None:
    lm = program()
    out = io.StringIO()
    lm.describe(file=out)
    lines = out.getvalue().splitlines()
    assert lines[:6] == ["system:", "  Be terse.", "user:", "  Where is", "  Paris?", "assistant:"]
    assert lines[7].startswith(f"  [{lm.usage.prompt_tokens} prompt tokens")
    assert "captures:" in lines
    assert f"  sure = {lm['sure']!r}" in lines
    assert lines[-1].startswith("usage (2 generations): ")
    assert f"{lm.usage.output_tokens} output tokens" in lines[-1]
    # print(lm) is still the prompt as the model sees it, chat template included.
    assert str(lm).endswith(f"Sure? {lm['sure']}<|im_end|>\n Done.")
    assert "prompt tokens" not in str(lm)
