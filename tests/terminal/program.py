"""A program for the terminal tests: run under tmux (a terminal) or with a pipe.

``python program.py RESULT.json [DELAY_S]``: a chat with roles, a streamed generation, a
select, and the user's own prints in between; each model step sleeps ``DELAY_S`` so a
test can look at the screen while it generates. The Model's text and captures are written
to ``RESULT.json`` at the end, for the test to compare with what the view wrote.
"""

import json
import sys
import time

from rudder import assistant, gen, models, select, system, user

result_path = sys.argv[1]
delay = float(sys.argv[2]) if len(sys.argv) > 2 else 0.0

lm = models.Mock(
    ["Paris is the capital of France, on the Seine, with many museums and old bridges."],
    echo=True,
)
forward = lm.engine._forward


def slowly(ids):  # type: ignore[no-untyped-def]
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
