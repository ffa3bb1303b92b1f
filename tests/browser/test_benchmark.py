"""``benchmarks/client_render.py`` in a tiny configuration, so that it cannot rot: it must
run, drive Chromium both ways and write its results. (Speed itself is never asserted.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_client_render_benchmark_runs_in_a_tiny_configuration(tmp_path):
    out = tmp_path / "client_render.json"
    command = [
        sys.executable,
        str(ROOT / "benchmarks" / "client_render.py"),
        *("--tokens", "300", "--repeats", "1", "--warmup", "0", "--out", str(out)),
    ]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "first paint" in done.stdout

    results = json.loads(out.read_text())
    assert results["tokens"] == 300
    assert results["batch_tokens"] == 32
    assert results["repeats"] == 1
    assert results["tokens_appended_messages"] == 10  # 300 tokens in batches of 32
    assert results["messages"] > results["tokens_appended_messages"]
    assert results["inline_page_bytes"] > results["stream_json_bytes"] > 0
    assert set(results["machine"]) >= {"python", "chromium", "playwright"}
    for mode in ("inline", "live"):
        summary = results[mode]
        assert len(summary["runs"]) == 1
        first, every = summary["median_first_paint_ms"], summary["median_all_tokens_ms"]
        assert 0 < first <= every
        assert 0 < summary["median_all_tokens_dom_ms"] <= every
        # The token spans built by then: the chunks on screen at least, at most every token.
        assert 0 < summary["runs"][0]["spans"] <= 300
    assert results["live"]["runs"][0]["messages_delivered"] == results["messages"]
    assert results["live"]["median_delivery_ms"] > 0
