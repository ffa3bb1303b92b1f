"""A program for the terminal tests: run under tmux (a terminal) or with a pipe.

``python program.py RESULT.json [DELAY_S] [warn]``: a chat with roles, a streamed
generation, a select, and the user's own prints in between; each model step sleeps
``DELAY_S`` so a test can look at the screen while it generates. With ``warn``, the fifth
model step also raises a Python warning and logs a line through a logging handler made
before rudder was imported (as a library would, mid-generation). The Model's text and
captures are written to ``RESULT.json`` at the end, for the test to compare with what the
view wrote.
"""

import json
import logging
import sys
import time
import warnings

logging.basicConfig(format="%(name)s: %(message)s")  # holds the real stderr, like a library's

from rudder import assistant, gen, models, select, system, user  # noqa: E402

result_path = sys.argv[1]
delay = float(sys.argv[2]) if len(sys.argv) > 2 else 0.0
warn = "warn" in sys.argv[3:]
steps = 0

lm = models.Mock(
    ["Paris is the capital of France, on the Seine, with many museums and old bridges."],
    echo=True,
)
forward = lm.engine._forward


def slowly(ids):  # type: ignore[no-untyped-def]
    global steps
    steps += 1
    if warn and steps == 5:
        warnings.warn("A LIBRARY WARNING", FutureWarning, stacklevel=1)
        logging.getLogger("library").warning("A LIBRARY LOG LINE")
    time.sleep(delay)
    return forward(ids)


lm.engine._forward = slowly  # type: ignore[method-assign]

with system():
    lm += "You are terse."
with user():
    lm += "Where is Paris?"
print("USER LINE ONE")
with assistant():
    lm += gen("answer", stop="bridges", max_tokens=80) + "."
    print("USER LINE TWO")
    lm += " Sure? " + select(["yes", "no"], name="sure")
print("USER LINE THREE")
with open(result_path, "w", encoding="utf-8") as out:
    json.dump({"answer": lm["answer"], "sure": lm["sure"]}, out)
