// The metrics bar: while the run goes, its status and the machine's load; when it is done,
// what it cost. Each figure carries a one-line description (its title).

import type {RunState} from "./state";
import {generating} from "./state";
import {bytes, count, percent, seconds} from "./format";

export interface Metric {
  key: string;
  label: string;
  value: string;
  description: string;
}

export function runStatus(state: RunState): "waiting" | "running" | "done" | "error" {
  if (state.run === null) return "waiting";
  return state.run.status;
}

export function metricsOf(state: RunState): Metric[] {
  const status = runStatus(state);
  const out: Metric[] = [];
  const statusText =
    status === "running" ? (generating(state) ? "generating" : "running") : status;
  out.push({
    key: "status",
    label: "status",
    value: state.run?.error ? `${statusText}: ${state.run.error}` : statusText,
    description: "Whether the run (a notebook cell, a rudder.run() block) is still going",
  });
  if (status === "running" || status === "waiting") {
    const sample = state.samples[state.samples.length - 1];
    if (sample !== undefined) {
      out.push(
        {
          key: "cpu",
          label: "CPU",
          value: `${sample.process_cpu_percent.toFixed(0)}% (machine ${sample.cpu_percent.toFixed(0)}%)`,
          description: "CPU use of this process (100% is one core) and of the whole machine",
        },
        {
          key: "ram",
          label: "RAM",
          value: `${bytes(sample.process_rss_bytes)} (machine ${bytes(sample.ram_used_bytes)} of ${bytes(sample.ram_total_bytes)})`,
          description: "Memory held by this process, and used on the machine",
        },
      );
      if (sample.gpu_percent !== null) {
        out.push({
          key: "gpu",
          label: "GPU",
          value: `${sample.gpu_percent.toFixed(0)}%`,
          description: "Utilisation of the GPU",
        });
      }
      if (sample.vram_used_bytes !== null) {
        out.push({
          key: "vram",
          label: "VRAM",
          value: `${bytes(sample.vram_used_bytes)} of ${bytes(sample.vram_total_bytes)}`,
          description: "GPU memory in use",
        });
      }
    }
    return out;
  }
  const usage = state.usage;
  if (usage !== null) {
    out.push(
      {
        key: "tokens",
        label: "tokens",
        value: `${count(usage.prompt_tokens)} in, ${count(usage.output_tokens)} out`,
        description:
          "Prompt tokens the model read (cached ones included) and tokens the program added by generation (forced and generated)",
      },
      {
        key: "reduction",
        label: "token reduction",
        value: percent(usage.token_reduction, 0),
        description:
          "Share of output tokens the grammar forced, so the model did not have to choose them",
      },
      {
        key: "ttft",
        label: "time to first token",
        value: seconds(usage.time_to_first_token_s),
        description: "From the start of the first generation to its first token",
      },
      {
        key: "latency",
        label: "latency",
        value: usage.per_token_s === null ? "–" : `${seconds(usage.per_token_s)}/token`,
        description: "Average time per output token",
      },
    );
  }
  const run = state.run;
  if (run !== null && run.started_at !== null && run.finished_at !== null) {
    out.push({
      key: "wall",
      label: "wall time",
      value: seconds(run.finished_at - run.started_at),
      description: "From the start of the run to its end, Python included",
    });
  }
  return out;
}
