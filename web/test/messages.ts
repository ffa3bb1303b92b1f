// Builders of protocol messages for the client's tests, typed with the generated protocol.
//
// `new Stream(runId)` numbers the messages it makes from seq 0, as the bus numbers a run's
// stream; records (`usage`, `run`, `node`, `token`, ...) take overrides of their fields.

import type {
  Backtrack,
  CaptureRecord,
  CaptureSet,
  Metrics,
  NodeAdded,
  NodeRecord,
  Reset,
  RoleCloseRecord,
  RoleOpenRecord,
  RunFinished,
  RunRecord,
  RunStarted,
  SystemSample,
  Status,
  TextRecord,
  TokenRecord,
  TokensAppended,
  Usage,
} from "../src/protocol";
import type {ServerMessage} from "../src/messages";

export const RUN = "run-1";

export function usage(fields: Partial<Usage> = {}): Usage {
  return {
    backtracked_tokens: 0,
    cached_prompt_tokens: 0,
    forced_tokens: 0,
    forward_passes: 0,
    forward_s: 0,
    generated_tokens: 0,
    generations: 0,
    healed_tokens: 0,
    mask_s: 0,
    output_tokens: 0,
    per_token_s: null,
    prompt_tokens: 0,
    time_to_first_token_s: null,
    token_reduction: 0,
    total_s: 0,
    ...fields,
  };
}

export function runRecord(fields: Partial<RunRecord> = {}): RunRecord {
  return {
    error: null,
    finished_at: null,
    id: RUN,
    name: "test",
    started_at: 100,
    status: "running",
    usage: usage(),
    ...fields,
  };
}

export function text(value: string): TextRecord {
  return {kind: "text", text: value};
}

export function roleOpen(role: string): RoleOpenRecord {
  return {kind: "role_open", role};
}

export function roleClose(role: string): RoleCloseRecord {
  return {kind: "role_close", role};
}

let tokenIds = 1000;

/** A token record; `bytes` (byte values) sets `bytes_b64`, for tokens that are not UTF-8. */
export function token(
  value: string,
  fields: Partial<TokenRecord> & {bytes?: number[]} = {},
): TokenRecord {
  const {bytes, ...rest} = fields;
  return {
    bytes_b64: bytes === undefined ? null : btoa(String.fromCharCode(...bytes)),
    id: tokenIds++,
    kind: "token",
    latency_s: 0.01,
    prob: 0.9,
    source: "generated",
    special: false,
    text: value,
    top: [],
    top_allowed: null,
    ...rest,
  };
}

export function capture(name: string, value: string): CaptureRecord {
  return {is_list: false, kind: "capture", log_prob: -0.5, name, removed: false, value};
}

export function sample(fields: Partial<SystemSample> = {}): SystemSample {
  return {
    cpu_percent: 25,
    gpu_percent: null,
    process_cpu_percent: 80,
    process_rss_bytes: 512 * 1024 * 1024,
    ram_total_bytes: 16 * 1024 ** 3,
    ram_used_bytes: 8 * 1024 ** 3,
    time_s: 0,
    vram_total_bytes: null,
    vram_used_bytes: null,
    ...fields,
  };
}

/** A node record: a text node by default (give `entries: []` for a generation as it started). */
export function nodeRecord(
  id: number,
  parentId: number | null,
  fields: Partial<NodeRecord> = {},
): NodeRecord {
  return {
    created_at: 100 + id,
    echo: true,
    entries: [],
    explored: null,
    healed_bytes: 0,
    hidden: false,
    hidden_chars: null,
    id,
    input: {kind: "text", value: ""},
    parent_id: parentId,
    run_id: RUN,
    usage: null,
    ...fields,
  };
}

/** Messages of one run, numbered from `seq` 0 in the order they are made. */
export class Stream {
  readonly messages: ServerMessage[] = [];
  private next = 0;

  constructor(readonly runId: string = RUN) {}

  private push<M extends ServerMessage>(message: M): M {
    this.messages.push(message);
    return message;
  }

  private head() {
    return {v: 1 as const, seq: this.next++, run_id: this.runId};
  }

  runStarted(fields: Partial<RunRecord> = {}): RunStarted {
    return this.push({...this.head(), type: "run_started", run: runRecord({id: this.runId, ...fields})});
  }

  runFinished(fields: Partial<RunRecord> = {}): RunFinished {
    const run = runRecord({id: this.runId, status: "done", finished_at: 102.5, ...fields});
    return this.push({...this.head(), type: "run_finished", run});
  }

  node(id: number, parentId: number | null, fields: Partial<NodeRecord> = {}): NodeAdded {
    const node = nodeRecord(id, parentId, {run_id: this.runId, ...fields});
    return this.push({...this.head(), type: "node_added", node});
  }

  /** A text node holding `value`. */
  textNode(id: number, parentId: number | null, value: string): NodeAdded {
    return this.node(id, parentId, {input: {kind: "text", value}, entries: [text(value)]});
  }

  /** A generation as it started: no entries, its tokens follow. */
  generation(id: number, parentId: number | null, fields: Partial<NodeRecord> = {}): NodeAdded {
    return this.node(id, parentId, {input: {kind: "grammar", value: "gen()"}, entries: [], ...fields});
  }

  tokens(nodeId: number, tokens: TokenRecord[], healedBytes = 0): TokensAppended {
    return this.push({...this.head(), type: "tokens_appended", node_id: nodeId, healed_bytes: healedBytes, table: [], tokens});
  }

  backtrack(nodeId: number, tokens: number): Backtrack {
    return this.push({...this.head(), type: "backtrack", node_id: nodeId, tokens});
  }

  capture(nodeId: number, record: CaptureRecord): CaptureSet {
    return this.push({...this.head(), type: "capture", node_id: nodeId, capture: record});
  }

  metrics(
    nodeId: number | null,
    fields: {usage?: Usage; samples?: SystemSample[]; hiddenChars?: number | null} = {},
  ): Metrics {
    return this.push({
      ...this.head(),
      type: "metrics",
      node_id: nodeId,
      usage: fields.usage ?? usage(),
      samples: fields.samples ?? [],
      hidden_chars: fields.hiddenChars ?? null,
    });
  }

  status(nodeId: number | null, state: Status["state"], message = ""): Status {
    return this.push({...this.head(), type: "status", node_id: nodeId, state, message});
  }
}

/** A reset of run `runId`: the stream starts again at `firstSeq` (not part of any Stream). */
export function reset(firstSeq: number, runId: string = RUN): Reset {
  return {v: 1, seq: firstSeq, run_id: runId, type: "reset", first_seq: firstSeq, reason: "test", table: []};
}
