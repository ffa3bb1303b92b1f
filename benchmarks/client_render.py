"""How fast the run view shows a long run in Chromium: inlined in the page, and streamed.

    python benchmarks/client_render.py [--tokens 10000] [--repeats 5] [--batch 32]
                                       [--out benchmarks/results/client_render.json]

A long generation on ``models.Mock`` (the real decode loop: probabilities, latencies and
top candidates as a real run sends them) gives the token records; its stream is re-cut so
that exactly ``--tokens`` tokens arrive in ``tokens_appended`` messages of ``--batch``
tokens. Each repeat shows that stream in a fresh browser context, two ways:

* inline: the client page (``rudder.visual.html._page.client_page``) with every message inlined,
  loaded from a server on 127.0.0.1; times count from the navigation's start;
* live: the notebook widget's module (``static/widget.js``) on a host page, with a fake
  anywidget model, hosts the client page in its sandboxed iframe; once the client is ready
  the messages are delivered as the kernel sends them (one custom message per protocol
  message, each in its own task, relayed to the iframe with postMessage); times count from
  the first delivery.

Measured, in the page showing the view: first paint (the first frame that shows a token
has been painted) and all tokens (the frame that shows all of them has been painted), from
a MutationObserver and the task after that frame's rendering. A token is in the page as its
span or, in a chunk of the text not yet built because it is away from the screen, as text
(``web/src/chunks.ts``; the chunk's ``data-unbuilt`` counts them): then every token is in
the page (found by the browser's find, copied by a selection) and what is on screen is
built; ``spans`` says how many token spans the page held when measured. The inline page
shows every token in its first frame, so its two figures nearly agree; its
first-contentful-paint (the browser's own mark, when the frame was presented) is reported
too, and for the live mode the time the host took to hand every message over. Reported:
medians over the repeats, and every figure (``runs``). Needs Debian's Chromium
(/usr/bin/chromium) and the Python ``playwright`` package; nothing is fetched from anywhere
but 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from importlib import resources
from importlib.metadata import version
from pathlib import Path
from typing import Any

TOKENS = 10_000
REPEATS = 5
BATCH = 32
TIMEOUT_MS = 300_000

# Runs in every frame before its scripts: notes when the first token span and the last of
# `target` spans reach the DOM, and when the frame showing them has been painted: the task
# after that frame's rendering (the frame being rendered when the change came from an
# animation-frame callback, as the client's renders do, else the next one). Times are
# absolute (timeOrigin + now), comparable between the host page and its iframe.
WATCH = """
(() => {
  const target = %d;
  const now = () => performance.timeOrigin + performance.now();
  const bench = {firstDom: null, firstPainted: null, allDom: null, allPainted: null};
  window.__bench = bench;
  const afterTask = (done) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => done(now());
    channel.port2.postMessage(null);
  };
  // True from a frame's first animation-frame callback until the task after its rendering.
  let inFrame = false;
  const frameLoop = () => {
    if (!inFrame) {
      inFrame = true;
      afterTask(() => { inFrame = false; });
    }
    if (bench.allPainted === null) requestAnimationFrame(frameLoop);
  };
  requestAnimationFrame(frameLoop);
  const afterPaint = (done) => {
    if (inFrame) afterTask(done);
    else requestAnimationFrame(() => afterTask(done));
  };
  const spans = document.getElementsByClassName("rd-token");
  // Tokens held as text by chunks not yet built (chunks.ts).
  const unbuilt = document.getElementsByClassName("rd-lazy");
  const held = () => {
    let count = spans.length;
    for (const chunk of unbuilt) count += Number(chunk.dataset.unbuilt ?? 0);
    return count;
  };
  const observer = new MutationObserver(() => {
    const count = held();
    if (count > 0 && bench.firstDom === null) {
      bench.firstDom = now();
      afterPaint((t) => { bench.firstPainted = t; });
    }
    if (count >= target && bench.allDom === null) {
      bench.allDom = now();
      observer.disconnect();
      afterPaint((t) => { bench.allPainted = t; });
    }
  });
  observer.observe(document, {
    childList: true, subtree: true, attributes: true, attributeFilter: ["data-unbuilt"],
  });
})();
"""

HOST_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>widget host</title></head>
<body style="margin: 0"><div id="out" style="width: 1000px"></div>
<script type="module">
import widget from "/widget.js";

class FakeModel {
  constructor(attrs) { this.attrs = attrs; this.listeners = new Set(); this.sent = []; }
  get(name) { return this.attrs[name]; }
  on(event, callback) { if (event === "msg:custom") this.listeners.add(callback); }
  off(event, callback) { this.listeners.delete(callback); }
  send(content) { this.sent.push(content); }
}

const task = () => new Promise((resolve) => {
  const channel = new MessageChannel();
  channel.port1.onmessage = () => resolve();
  channel.port2.postMessage(null);
});

window.host = {
  start(page) {
    this.model = new FakeModel({_page: page, _final: "", run_id: ""});
    widget.initialize({model: this.model});
    widget.render({model: this.model, el: document.getElementById("out")});
  },
  ready() { return this.model.sent.some((c) => c.message.type === "client_ready"); },
  // The kernel's custom messages, one per protocol message, each in its own task.
  async stream(json) {
    const contents = JSON.parse(json).map((m) => ({rudder: "messages", json: JSON.stringify([m])}));
    const started = performance.timeOrigin + performance.now();
    for (const content of contents) {
      for (const callback of this.model.listeners) callback(content, []);
      await task();
    }
    const finished = performance.timeOrigin + performance.now();
    return {started, finished, delivered: contents.length};
  },
};
window.hostReady = true;
</script></body></html>
"""


def build_stream(tokens: int, batch: int) -> list[Any]:
    """A run of exactly ``tokens`` generated tokens in messages of ``batch`` tokens."""
    import rudder
    from rudder.models import Mock
    from rudder.visual import TokensAppended, get_bus

    # The Mock writes the story out, then ends; its context holds 4,096 tokens, so a long
    # run's records come from several generations, shown as the first one's.
    story = b"Once upon a time a small model wrote a long story, and then it wrote more. " * 40
    records: list[Any] = []
    table: dict[int, Any] = {}
    frame: list[Any] = []
    while len(records) < tokens:
        with rudder.run("client benchmark") as run:
            (
                Mock(byte_patterns=[story], echo=True)
                + "Tell a story: "
                + rudder.gen("story", max_tokens=min(3_000, tokens - len(records)))
            )
        messages = get_bus().messages(run.id)
        appended = [m for m in messages if m.type == "tokens_appended"]
        records += [t for m in appended for t in m.tokens]
        # One tokenizer: a token id means the same token in every run's table.
        table.update({entry.id: entry for m in appended for entry in m.table})
        frame = frame or messages
    records = records[:tokens]
    appended = [m for m in frame if m.type == "tokens_appended"]
    first = frame.index(appended[0])
    last = frame.index(appended[-1])
    named: set[int] = set()

    def first_named(part: list[Any]) -> list[Any]:
        # Each batch carries the token table entries of the ids it names first.
        ids = [i for t in part for i in (t.i, *(c[0] for c in t.c), *_pair_ids(t.a))]
        fresh = [i for i in dict.fromkeys(ids) if i not in named]
        named.update(fresh)
        return [table[i] for i in fresh]

    batches = [
        TokensAppended(
            seq=0,
            run_id=appended[0].run_id,
            node_id=appended[0].node_id,
            healed_bytes=appended[0].healed_bytes if i == 0 else 0,
            table=first_named(records[i : i + batch]),
            tokens=records[i : i + batch],
        )
        for i in range(0, tokens, batch)
    ]
    stream = frame[:first] + batches + frame[last + 1 :]
    return [m.model_copy(update={"seq": seq}) for seq, m in enumerate(stream)]


def _pair_ids(allowed: list[Any] | None) -> list[int]:
    return [item[0] for item in allowed or () if not isinstance(item, int)]


def wait_painted(frame: Any) -> dict[str, float]:
    frame.wait_for_function(
        "() => window.__bench !== undefined && window.__bench.allPainted !== null",
        timeout=TIMEOUT_MS,
        polling=50,
    )
    return frame.evaluate("() => window.__bench")  # type: ignore[no-any-return]


def spans(frame: Any) -> int:
    return frame.evaluate("() => document.querySelectorAll('.rd-text .rd-token').length")  # type: ignore[no-any-return]


def tokens_held(frame: Any) -> int:
    """The tokens in the view's text: spans, and tokens held as text by unbuilt chunks."""
    return frame.evaluate(  # type: ignore[no-any-return]
        """() => document.querySelectorAll('.rd-text .rd-token').length
            + [...document.querySelectorAll('.rd-text .rd-lazy')]
                .reduce((sum, chunk) => sum + Number(chunk.dataset.unbuilt), 0)"""
    )


def inline_once(browser: Any, base: str, tokens: int) -> dict[str, Any]:
    context = browser.new_context(viewport={"width": 1000, "height": 800})
    try:
        context.add_init_script(WATCH % tokens)
        page = context.new_page()
        page.goto(f"{base}/inline.html", timeout=TIMEOUT_MS)
        marks = wait_painted(page)
        origin = page.evaluate("() => performance.timeOrigin")
        fcp = page.evaluate(
            "() => performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? null"
        )
        assert tokens_held(page) == tokens, (tokens_held(page), tokens)
        return {
            "first_paint_ms": marks["firstPainted"] - origin,
            "all_tokens_ms": marks["allPainted"] - origin,
            "all_tokens_dom_ms": marks["allDom"] - origin,
            "first_contentful_paint_ms": fcp,
            "spans": spans(page),
        }
    finally:
        context.close()


def live_once(
    browser: Any, base: str, page_html: str, stream_json: str, tokens: int
) -> dict[str, Any]:
    context = browser.new_context(viewport={"width": 1000, "height": 800})
    try:
        context.add_init_script(WATCH % tokens)
        page = context.new_page()
        page.goto(f"{base}/host.html", timeout=TIMEOUT_MS)
        page.wait_for_function("() => window.hostReady === true")
        page.evaluate("(html) => host.start(html)", page_html)
        page.wait_for_function("() => host.ready()", timeout=TIMEOUT_MS)
        frame = page.wait_for_selector("#out iframe").content_frame()
        delivery = page.evaluate("(json) => host.stream(json)", stream_json)
        marks = wait_painted(frame)
        assert tokens_held(frame) == tokens, (tokens_held(frame), tokens)
        started = delivery["started"]
        return {
            "first_paint_ms": marks["firstPainted"] - started,
            "all_tokens_ms": marks["allPainted"] - started,
            "all_tokens_dom_ms": marks["allDom"] - started,
            "delivery_ms": delivery["finished"] - started,
            "messages_delivered": delivery["delivered"],
            "spans": spans(frame),
        }
    finally:
        context.close()


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in runs[0]:
        values = [r[key] for r in runs if r[key] is not None]
        if key not in ("messages_delivered", "spans") and values:
            out[f"median_{key}"] = statistics.median(values)
    out["runs"] = runs
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=TOKENS)
    parser.add_argument("--repeats", type=int, default=REPEATS)
    parser.add_argument("--batch", type=int, default=BATCH, help="tokens per message")
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured runs of each mode")
    parser.add_argument("--out", default="benchmarks/results/client_render.json")
    args = parser.parse_args(argv)

    from playwright.sync_api import sync_playwright

    from rudder._chromium import launch_chromium, serve_files
    from rudder.visual.html._page import client_page, messages_json

    started = time.perf_counter()
    stream = build_stream(args.tokens, args.batch)
    stream_json = messages_json(stream)
    inline_html = client_page(stream_json).encode()
    widget_js = Path(str(resources.files("rudder.visual").joinpath("static", "widget.js")))
    files = {
        "/inline.html": (inline_html, "text/html; charset=utf-8"),
        "/host.html": (HOST_PAGE.encode(), "text/html; charset=utf-8"),
        "/widget.js": (widget_js.read_bytes(), "text/javascript; charset=utf-8"),
    }
    built_s = time.perf_counter() - started

    inline: list[dict[str, Any]] = []
    live: list[dict[str, Any]] = []
    with serve_files(files) as base, sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        chromium_version = browser.version
        empty_page = client_page()
        for repeat in range(args.warmup + args.repeats):
            # Alternate the modes so that a slow spell of the machine hits both.
            one_inline = inline_once(browser, base, args.tokens)
            one_live = live_once(browser, base, empty_page, stream_json, args.tokens)
            if repeat >= args.warmup:
                inline.append(one_inline)
                live.append(one_live)
        browser.close()

    results: dict[str, Any] = {
        "machine": {
            "python": platform.python_version(),
            "chromium": chromium_version,
            "playwright": version("playwright"),
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
        },
        "tokens": args.tokens,
        "batch_tokens": args.batch,
        "repeats": args.repeats,
        "warmup": args.warmup,
        "messages": len(stream),
        "tokens_appended_messages": sum(m.type == "tokens_appended" for m in stream),
        "stream_json_bytes": len(stream_json),
        "inline_page_bytes": len(inline_html),
        "stream_build_s": built_s,
        "inline": summarize(inline),
        "live": summarize(live),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")

    print(
        f"{args.tokens:,} tokens, {len(stream)} messages ({len(stream_json) / 1e6:.1f} MB of JSON),"
        f" median of {args.repeats}; Chromium {chromium_version}"
    )
    for mode in ("inline", "live"):
        summary = results[mode]
        print(
            f"  {mode:<7} first paint {summary['median_first_paint_ms']:8.1f} ms"
            f"   all tokens {summary['median_all_tokens_ms']:8.1f} ms"
        )
    print(f"written to {out}")
    return results


if __name__ == "__main__":
    main()
