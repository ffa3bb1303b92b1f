import {describe, expect, it} from "vitest";

import type {ServerMessage} from "../src/messages";
import type {Metric} from "../src/metrics";
import {metricsOf, runStatus} from "../src/metrics";
import type {RunState} from "../src/state";
import {applyMessage, createRunState} from "../src/state";
import {Stream, sample, usage} from "./messages";
import {streams} from "./streams";

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

function fold(messages: Iterable<ServerMessage>): RunState {
  const state = createRunState();
  for (const message of messages) expect(applyMessage(state, message)).toBe("applied");
  return state;
}

function byKey(metrics: Metric[]): Record<string, string> {
  return Object.fromEntries(metrics.map((metric) => [metric.key, metric.value]));
}

function keys(metrics: Metric[]): string[] {
  return metrics.map((metric) => metric.key);
}

/** A run going on: one generation streaming, two system samples so far. */
function running(samples = [sample({time_s: 1, process_cpu_percent: 10}), sample({time_s: 2})]): Stream {
  const s = new Stream();
  s.runStarted();
  s.generation(1, null);
  s.metrics(null, {samples});
  return s;
}

const FINAL = usage({
  prompt_tokens: 1234,
  output_tokens: 56,
  token_reduction: 0.25,
  time_to_first_token_s: 0.0123,
  per_token_s: 0.002,
});

function finished(fields: Parameters<Stream["runFinished"]>[0] = {}): Stream {
  const s = running();
  s.metrics(null, {usage: FINAL});
  s.runFinished({usage: FINAL, started_at: 100, finished_at: 102.5, ...fields});
  return s;
}

describe("runStatus", () => {
  it("is waiting before the run starts, then the run's status", () => {
    const s = finished();
    const state = createRunState();
    expect(runStatus(state)).toBe("waiting");
    applyMessage(state, s.messages[0]);
    expect(runStatus(state)).toBe("running");
    for (const message of s.messages.slice(1)) applyMessage(state, message);
    expect(runStatus(state)).toBe("done");
    expect(runStatus(fold(finished({status: "error", error: "x"}).messages))).toBe("error");
  });
});

describe("metricsOf", () => {
  it("before the run starts: its status alone", () => {
    const metrics = metricsOf(createRunState());
    expect(keys(metrics)).toEqual(["status"]);
    expect(metrics[0].value).toBe("waiting");
  });

  it("while the run goes: its status and the latest sample's CPU and RAM", () => {
    const state = fold(
      running([
        sample({time_s: 1, process_cpu_percent: 10, cpu_percent: 5, process_rss_bytes: MiB}),
        sample({
          time_s: 2,
          process_cpu_percent: 149.6,
          cpu_percent: 33.2,
          process_rss_bytes: 512 * MiB,
          ram_used_bytes: 8 * GiB,
          ram_total_bytes: 16 * GiB,
        }),
      ]).messages,
    );
    const metrics = metricsOf(state);
    expect(keys(metrics)).toEqual(["status", "cpu", "ram"]);
    expect(byKey(metrics)).toEqual({
      status: "running",
      cpu: "150% (machine 33%)",
      ram: "512.0 MiB (machine 8.0 GiB of 16.0 GiB)",
    });
  });

  it("while a generation runs, the status says so", () => {
    const s = running();
    const state = fold(s.messages);
    applyMessage(state, s.status(1, "generating"));
    expect(byKey(metricsOf(state)).status).toBe("generating");
    applyMessage(state, s.status(1, "idle"));
    expect(byKey(metricsOf(state)).status).toBe("running");
  });

  it("shows GPU and VRAM only when the sample has them", () => {
    const withGpu = fold(
      running([sample({gpu_percent: 87.4, vram_used_bytes: 3 * GiB, vram_total_bytes: 80 * GiB})]).messages,
    );
    const metrics = metricsOf(withGpu);
    expect(keys(metrics)).toEqual(["status", "cpu", "ram", "gpu", "vram"]);
    expect(byKey(metrics).gpu).toBe("87%");
    expect(byKey(metrics).vram).toBe("3.0 GiB of 80.0 GiB");

    const gpuOnly = metricsOf(fold(running([sample({gpu_percent: 0})]).messages));
    expect(keys(gpuOnly)).toEqual(["status", "cpu", "ram", "gpu"]);
    expect(byKey(gpuOnly).gpu).toBe("0%");
  });

  it("samples before the run's record: waiting, with the machine's load", () => {
    const s = new Stream();
    s.metrics(null, {samples: [sample()]});
    const metrics = metricsOf(fold(s.messages));
    expect(keys(metrics)).toEqual(["status", "cpu", "ram"]);
    expect(byKey(metrics).status).toBe("waiting");
  });

  it("while the run goes without samples: its status alone", () => {
    const metrics = metricsOf(fold(running([]).messages));
    expect(keys(metrics)).toEqual(["status"]);
  });

  it("when the run is done: tokens, token reduction, time to first token, latency, wall time", () => {
    const metrics = metricsOf(fold(finished().messages));
    expect(keys(metrics)).toEqual(["status", "tokens", "reduction", "ttft", "latency", "wall"]);
    expect(byKey(metrics)).toEqual({
      status: "done",
      tokens: "1,234 in, 56 out",
      reduction: "25%",
      ttft: "12.3 ms",
      latency: "2.00 ms/token",
      wall: "2.50 s",
    });
  });

  it("when the run is done, shows the run's usage, not the last node's", () => {
    const s = running();
    s.metrics(1, {usage: usage({prompt_tokens: 1, output_tokens: 2})});
    s.runFinished({usage: FINAL});
    expect(byKey(metricsOf(fold(s.messages))).tokens).toBe("1,234 in, 56 out");
  });

  it("when the run is done, figures it does not have show as a dash", () => {
    const metrics = metricsOf(
      fold(finished({usage: usage({per_token_s: null, time_to_first_token_s: null})}).messages),
    );
    expect(byKey(metrics).latency).toBe("–");
    expect(byKey(metrics).ttft).toBe("–");
  });

  it("shows no wall time without both ends of the run", () => {
    expect(keys(metricsOf(fold(finished({finished_at: null}).messages)))).not.toContain("wall");
    expect(keys(metricsOf(fold(finished({started_at: null}).messages)))).not.toContain("wall");
  });

  it("a failed run: its status with the error, and what it cost", () => {
    const metrics = metricsOf(fold(finished({status: "error", error: "ValueError: no city"}).messages));
    expect(byKey(metrics).status).toBe("error: ValueError: no city");
    expect(keys(metrics)).toEqual(["status", "tokens", "reduction", "ttft", "latency", "wall"]);
  });

  it("gives every metric a label and a description", () => {
    const gpu = sample({gpu_percent: 50, vram_used_bytes: GiB, vram_total_bytes: 2 * GiB});
    const states = [
      createRunState(),
      fold(running([gpu]).messages),
      fold(finished().messages),
      fold(finished({status: "error", error: "boom"}).messages),
    ];
    const seen = new Set<string>();
    for (const state of states) {
      for (const metric of metricsOf(state)) {
        seen.add(metric.key);
        expect(metric.label.trim(), metric.key).not.toBe("");
        expect(metric.value.trim(), metric.key).not.toBe("");
        expect(metric.description.trim().length, metric.key).toBeGreaterThan(10);
      }
    }
    expect(seen).toEqual(new Set(["status", "cpu", "ram", "gpu", "vram", "tokens", "reduction", "ttft", "latency", "wall"]));
  });

  it("of a recorded run: done, with its tokens", () => {
    const stream = streams.chat;
    const state = fold(stream.messages);
    const last = stream.messages[stream.messages.length - 1];
    expect(last.type).toBe("run_finished");
    if (last.type !== "run_finished") return;
    const metrics = byKey(metricsOf(state));
    expect(metrics.status).toBe("done");
    expect(metrics.tokens).toBe(`${last.run.usage.prompt_tokens} in, ${last.run.usage.output_tokens} out`);
    expect(metrics.wall).not.toBe("–");
  });
});
