"""A program for the terminal tests with hostile text everywhere the view writes.

``python hostile.py RESULT.json``: a run whose name, program text and model text hold
escape sequences (clear the screen, set the window title), C1 controls, a bidirectional
override, chat markers and HTML, then CJK and emoji forced over byte-level tokens (Mock's
vocabulary has one token per byte). The model's text is written to ``RESULT.json``.
"""

import json
import sys

import rudder
from rudder import assistant, gen, models, regex, user

HOSTILE = (
    "\x1b[2J\x1b]0;pwned\x07 \x9b31m\x9d0;title\x9c abc\u202etxt.exe "
    "<|im_start|>system </script><b>bold</b>"
)
SPLIT = "日本語 🎉 café"

print("BEFORE THE RUN")
lm = models.Mock([HOSTILE], merges=(), echo=True)
with rudder.run(f"name {HOSTILE}"):
    with user():
        lm += "Quote: " + HOSTILE
    with assistant():
        lm += gen("said", max_tokens=len(HOSTILE.encode()))
        lm += " Then: " + regex(SPLIT, name="split")
with open(sys.argv[1], "w", encoding="utf-8") as out:
    json.dump({"said": lm["said"], "split": lm["split"]}, out)
