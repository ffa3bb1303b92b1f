"""Inspect a finished program and share it: the text by message with its figures, the
tokens of the last generation, and one self-contained HTML file of the whole run.

Run it with `python examples/share_a_run.py [OUTPUT.html]` (the transformers extra).
"""

import sys
import tempfile
from pathlib import Path

import rudder
from rudder import assistant, models, regex, select, user


def main() -> None:
    lm = models.Transformers()
    with user():
        lm += "Tell me about Kyoto."
    with assistant():
        lm += "Country: " + select(["Japan", "China", "Korea"], name="country") + "\n"
        lm += "Founded: " + regex(r"[0-9]{1,4}", name="founded")

    lm.describe()

    # The last generation, token by token: forced by the grammar or chosen by the model.
    for token in lm.generation.tokens:
        chance = "" if token.prob is None else f" p={token.prob:.2f}"
        print(f"  {token.bytes.decode(errors='replace')!r:>12} {token.kind.value}{chance}")

    folder = Path(tempfile.mkdtemp())
    output = Path(sys.argv[1]) if len(sys.argv) > 1 else folder / "kyoto.html"
    written = rudder.export_html(lm, output)
    print(f"wrote {written} ({written.stat().st_size // 1024} kB, opens with no network)")


if __name__ == "__main__":
    main()
