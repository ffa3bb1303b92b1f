"""``python -m rudder.visual.protocol [--check]``: write (or check) the committed schema."""

from __future__ import annotations

import sys
from pathlib import Path

from rudder.visual.stream._protocol import schema_text

SCHEMA_PATH = Path(__file__).with_name("protocol.schema.json")


def main(argv: list[str]) -> int:
    text = schema_text()
    if "--check" in argv:
        if not SCHEMA_PATH.exists() or SCHEMA_PATH.read_text() != text:
            print(
                f"{SCHEMA_PATH} does not match the protocol in rudder.visual.stream._protocol; run "
                "`python -m rudder.visual.protocol` and regenerate the client's types",
                file=sys.stderr,
            )
            return 1
        return 0
    SCHEMA_PATH.write_text(text)
    print(f"wrote {SCHEMA_PATH}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
