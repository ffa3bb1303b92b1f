"""A program for the store's process tests: ``python writer.py STORE MODE [N]``.

- ``endless``: one run that generates until the test kills the process.
- ``runs N``: N runs, then prints each run's id and text, as its bus stream folds, as JSON.
- ``default``: steps outside any run (the default run), then exits normally.
- ``quiet``: the same with echo off (no step is shown, so no step is stored).
"""

import json
import sys

import rudder
from rudder import gen, models
from rudder.visual import get_bus
from rudder.visual.stream._view_state import RunView

store, mode = sys.argv[1], sys.argv[2]
rudder.settings.store = store
lm = models.Mock(["Paris 東京🗼 </s> <|im_end|>"], echo=True)

if mode == "endless":
    with rudder.run("endless"):
        lm += "Tell me everything: "
        while True:
            lm += gen(regex="[a-z ]+", max_tokens=10**6)
elif mode == "runs":
    texts = {}
    for n in range(int(sys.argv[3])):
        with rudder.run(f"process run {n}") as run:
            lm + f"run {n}: " + gen("x", max_tokens=40)
        view = RunView(run.id)
        for message in get_bus().messages(run.id):
            view.apply(message)
        texts[run.id] = [view.text(), view.last_seq]
    print(json.dumps(texts))
elif mode == "quiet":
    models.Mock() + "not shown " + gen("x", max_tokens=5)
elif mode == "default":
    out = lm + "outside any run " + gen("x", max_tokens=5)
    assert out.trace is not None
    view = RunView(out.trace.run_id)
    for message in get_bus().messages(out.trace.run_id):
        view.apply(message)
    print(json.dumps({"text": view.text()}))
