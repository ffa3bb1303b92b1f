// What the client knows of one run, folded from the kernel's messages.
//
// Messages are folded strictly in `seq` order. One already held is ignored (a replay that
// overlaps what arrived live); one after a hole is not folded and sets `wantsReplayAfter`,
// which the client turns into a replay request. `reset` starts over from `first_seq`.
// Backtracked tokens are kept, marked, so that views can show what was taken back.
// Streamed tokens come in the compact wire form (ids and bytes once per run, in the run's
// token table; candidates as [id, probability] pairs): they are expanded here into the token
// records of the first form, which a stored run may still carry, so views see one form.

import type {
  CandidateRecord,
  CaptureRecord,
  Cut,
  NodeRecord,
  RunRecord,
  SystemSample,
  TableToken,
  TokenRecord,
  Usage,
  WireToken,
} from "./protocol";
import type {ServerMessage} from "./messages";

/** Samples a view keeps: the bar shows the latest, so a long run's list stays bounded. */
export const MAX_SAMPLES = 120;

export interface ViewToken {
  record: TokenRecord;
  backtracked: boolean;
}

export interface NodeState {
  record: NodeRecord;
  /** Tokens streamed while the node generated, backtracked ones included. */
  tokens: ViewToken[];
  /** Bytes taken from the end of the parent's text (token healing). */
  healedBytes: number;
  /** What its healing took off the nodes before it, as the stream says (null: a stream of
   * the first form, which gave `healedBytes` alone). */
  cuts: Cut[] | null;
  captures: CaptureRecord[];
  usage: Usage | null;
  state: "" | "generating" | "idle" | "error";
  error: string;
  hiddenChars: number | null;
  /** Bumped on every change; `appendOnly` stays true while changes only added tokens. */
  revision: number;
  appendOnly: boolean;
}

export interface RunState {
  runId: string | null;
  run: RunRecord | null;
  nodes: Map<number, NodeState>;
  /** The node whose path the view shows: the last one added. */
  lastNodeId: number | null;
  usage: Usage | null;
  samples: SystemSample[];
  lastSeq: number;
  /** Times a message arrived after a hole. */
  gaps: number;
  /** Set while a hole is open: the client asks for a replay after this seq. */
  wantsReplayAfter: number | null;
  /** Messages about nodes this view never received. */
  unknownNodes: number;
  /** The run's token table: the ids and bytes of the tokens its stream named so far. */
  table: Map<number, TableToken>;
  /** Candidates of streamed tokens given apart from them (the inline page's), or null. */
  candidatesApart: CandidatesApart | null;
  /** Bumped on every change, for renderers. */
  revision: number;
}

export type ApplyResult = "applied" | "held" | "gap" | "other-run";

export function createRunState(runId: string | null = null): RunState {
  return {
    runId,
    run: null,
    nodes: new Map(),
    lastNodeId: null,
    usage: null,
    samples: [],
    lastSeq: -1,
    gaps: 0,
    wantsReplayAfter: null,
    unknownNodes: 0,
    table: new Map(),
    candidatesApart: null,
    revision: 0,
  };
}

/** Fold one message into `state` (in place). */
export function applyMessage(state: RunState, message: ServerMessage): ApplyResult {
  if (state.runId === null) state.runId = message.run_id;
  if (message.run_id !== state.runId) return "other-run";
  if (message.type === "reset") {
    Object.assign(state, createRunState(state.runId), {
      lastSeq: message.first_seq - 1,
      gaps: state.gaps,
      candidatesApart: state.candidatesApart,
      revision: state.revision + 1,
    });
    addToTable(state, message.table);
    return "applied";
  }
  if (message.seq <= state.lastSeq) return "held";
  if (message.seq !== state.lastSeq + 1) {
    if (state.wantsReplayAfter === null) {
      state.gaps += 1;
      state.wantsReplayAfter = state.lastSeq;
    }
    return "gap";
  }
  state.wantsReplayAfter = null;
  state.lastSeq = message.seq;
  fold(state, message);
  state.revision += 1;
  return "applied";
}

/** Fold many messages; true when any was applied. */
export function applyMessages(state: RunState, messages: Iterable<ServerMessage>): boolean {
  let changed = false;
  for (const message of messages) {
    if (applyMessage(state, message) === "applied") changed = true;
  }
  return changed;
}

function fold(state: RunState, message: ServerMessage): void {
  switch (message.type) {
    case "run_started":
    case "run_finished":
      state.run = message.run;
      state.usage = message.run.usage;
      return;
    case "node_added": {
      addToTable(state, message.table);
      state.nodes.set(message.node.id, {
        record: nodeRecord(state, message.node, message.tokens ?? null),
        tokens: [],
        healedBytes: message.node.healed_bytes,
        cuts: message.cuts ?? null,
        captures: [],
        usage: message.node.usage,
        state: "",
        error: "",
        hiddenChars: message.node.hidden_chars,
        revision: 0,
        appendOnly: true,
      });
      state.lastNodeId = message.node.id;
      return;
    }
    case "tokens_appended": {
      addToTable(state, message.table);
      const node = nodeOf(state, message.node_id);
      if (node === null) return;
      if (message.healed_bytes) {
        node.healedBytes += message.healed_bytes;
        node.appendOnly = false;
      }
      // `?? null`: a stored message of the first form has no `cuts`.
      const cuts = message.cuts ?? null;
      if (cuts !== null) node.cuts = [...(node.cuts ?? []), ...cuts];
      for (const token of message.tokens) {
        node.tokens.push({record: tokenRecord(state.table, token, state.candidatesApart), backtracked: false});
      }
      node.revision += 1;
      return;
    }
    case "backtrack": {
      const node = nodeOf(state, message.node_id);
      if (node === null) return;
      let left = message.tokens;
      for (let i = node.tokens.length - 1; i >= 0 && left > 0; i--) {
        const token = node.tokens[i];
        if (!token.backtracked) {
          token.backtracked = true;
          left -= 1;
        }
      }
      node.appendOnly = false;
      node.revision += 1;
      return;
    }
    case "capture": {
      const node = nodeOf(state, message.node_id);
      if (node === null) return;
      node.captures.push(message.capture);
      node.revision += 1;
      return;
    }
    case "metrics": {
      if (message.samples.length) {
        state.samples.push(...message.samples);
        if (state.samples.length > MAX_SAMPLES) state.samples.splice(0, state.samples.length - MAX_SAMPLES);
      }
      if (message.node_id === null) {
        state.usage = message.usage;
        return;
      }
      const node = nodeOf(state, message.node_id);
      if (node === null) return;
      node.usage = message.usage;
      if (message.hidden_chars !== null) {
        node.hiddenChars = message.hidden_chars;
        node.appendOnly = false;
        node.revision += 1;
      }
      return;
    }
    case "status": {
      if (message.node_id === null) return;
      const node = nodeOf(state, message.node_id);
      if (node === null) return;
      node.state = message.state;
      node.error = message.message;
      node.revision += 1; // the view marks a failed node
      return;
    }
  }
}

function addToTable(state: RunState, entries: TableToken[] | undefined): void {
  // A stored run of the first form (read back as written, by `rudder view`) has no table.
  for (const entry of entries ?? []) state.table.set(entry.id, entry);
}

function tableEntry(table: Map<number, TableToken>, id: number): TableToken {
  const entry = table.get(id);
  if (entry === undefined) refuseUnnamed(id);
  return entry;
}

function requireNamed(table: Map<number, TableToken>, id: number): void {
  if (!table.has(id)) refuseUnnamed(id);
}

function refuseUnnamed(id: number): never {
  throw new Error(`token ${id} is not in the run's token table`);
}

function candidate(table: Map<number, TableToken>, [id, prob]: [number, number], allowed: boolean): CandidateRecord {
  const {text, bytes_b64} = tableEntry(table, id);
  return {id, text, bytes_b64, prob, allowed};
}

const SOURCES = {i: "input", f: "forced", g: "generated"} as const;

/** A streamed token as the record of the first form (one of that form passes as it is). A
 * name the table lacks, or an allowed position out of range, is refused here, when the
 * token is folded (when its candidates come apart, when they are given to it); its
 * candidate records are made only when first read. */
export function tokenRecord(
  table: Map<number, TableToken>,
  token: WireToken | TokenRecord,
  apart: CandidatesApart | null = null,
): TokenRecord {
  if ("kind" in token) return token;
  if (token.c !== undefined) checkCandidates(table, token);
  else if (apart === null) throw new Error(`token ${token.i} comes without its candidates`);
  return new StreamedToken(table, token, apart);
}

function checkCandidates(table: Map<number, TableToken>, token: WireToken): void {
  // Indexed loops: this runs once per token, cold, where iterators cost more than the work.
  const c = token.c;
  const a = token.a ?? null;
  for (let k = 0; k < c.length; k++) requireNamed(table, c[k][0]);
  if (a !== null) {
    for (let k = 0; k < a.length; k++) {
      const item = a[k];
      if (typeof item !== "number") requireNamed(table, item[0]);
      else if (item < 0 || item >= c.length) throw new Error(`an allowed candidate at position ${item} of ${c.length}`);
    }
  }
}

/** The candidates of a run's streamed tokens, given apart from them: `[c, d, a]` of each
 * token of `messages` that comes without its own, in the order of the messages and their
 * tokens (the inline page holds them so, `rudder/visual/html/_page.py`, for the client to
 * parse them after its first paint). They are parsed, checked and given to their tokens at
 * once, by `give`, or when the first of those tokens' candidates is read. */
export class CandidatesApart {
  #json: string | null;
  #messages: readonly ServerMessage[];

  constructor(json: string, messages: readonly ServerMessage[]) {
    this.#json = json;
    this.#messages = messages;
  }

  /** Give every token of the messages that came without its candidates its own, checked
   * against `table` (once; later calls do nothing). */
  give(table: Map<number, TableToken>): void {
    const json = this.#json;
    if (json === null) return;
    this.#json = null;
    // Found now, not before the first paint: the messages' tokens, in order.
    const waiting: WireToken[] = [];
    for (const message of this.#messages) {
      if (message.type !== "tokens_appended" && message.type !== "node_added") continue;
      const tokens = message.tokens ?? [];
      for (let k = 0; k < tokens.length; k++) {
        const token = tokens[k];
        if (!("kind" in token) && token.c === undefined) waiting.push(token);
      }
    }
    this.#messages = [];
    const candidates = JSON.parse(json) as unknown;
    if (!Array.isArray(candidates) || candidates.length !== waiting.length) {
      throw new Error(`${waiting.length} tokens came without their candidates, which are not as many`);
    }
    for (let k = 0; k < waiting.length; k++) {
      const token = waiting[k];
      [token.c, token.d, token.a] = candidates[k] as [WireToken["c"], WireToken["d"], WireToken["a"]];
      checkCandidates(table, token);
    }
  }
}

/** A streamed token's record: its own fields at once, its candidates (`top`, `top_allowed`,
 * which only the tooltip and the explore panel read, for a token or two) made from the wire
 * token and the run's table when first read, so that folding a run of 10,000 tokens makes
 * 10,000 objects rather than 100,000. The table only grows, and a reset starts a new one,
 * so the candidates read the same whenever that is. They are getters of the class, not own
 * properties (defining those on each record cost more than making the candidates): a
 * spread or `Object.keys` does not see them, JSON does (`toJSON`). */
class StreamedToken implements TokenRecord {
  readonly kind = "token";
  readonly id: number;
  readonly text: string;
  readonly bytes_b64: string | null;
  readonly source: TokenRecord["source"];
  readonly prob: number | null;
  readonly latency_s: number;
  readonly special: boolean;
  #table: Map<number, TableToken>;
  #wire: WireToken;
  #apart: CandidatesApart | null;
  #top: CandidateRecord[] | null = null;
  #allowed: CandidateRecord[] | null = null;

  constructor(table: Map<number, TableToken>, token: WireToken, apart: CandidatesApart | null) {
    const {text, bytes_b64} = tableEntry(table, token.i);
    this.id = token.i;
    this.text = text;
    this.bytes_b64 = bytes_b64;
    this.source = SOURCES[token.s];
    this.prob = token.p;
    this.latency_s = token.l;
    this.special = token.x;
    this.#table = table;
    this.#wire = token;
    this.#apart = apart;
  }

  get top(): CandidateRecord[] {
    if (this.#top === null) {
      const {c, d} = this.#given();
      this.#top = c.map((pair, n) => candidate(this.#table, pair, !d.includes(n)));
    }
    return this.#top;
  }

  get top_allowed(): CandidateRecord[] | null {
    const {a} = this.#given();
    if (a === null) return null;
    if (this.#allowed === null) {
      const top = this.top;
      this.#allowed = a.map((item) => (typeof item === "number" ? top[item] : candidate(this.#table, item, true)));
    }
    return this.#allowed;
  }

  /** The wire token, with its candidates when they came apart. */
  #given(): WireToken {
    if (this.#wire.c === undefined) this.#apart?.give(this.#table);
    return this.#wire;
  }

  toJSON(): TokenRecord {
    return {...this, top: this.top, top_allowed: this.top_allowed};
  }
}

/** A node's record with its `token_ref` entries replaced by `tokens`, expanded (a record
 * of the first form, whose entries hold the token records, passes as it is). */
function nodeRecord(state: RunState, node: NodeRecord, tokens: WireToken[] | null): NodeRecord {
  if (tokens === null) return node;
  let next = 0;
  const entries = node.entries.map((entry) => {
    if (entry.kind !== "token_ref") return entry;
    const token = tokens[next++];
    if (token === undefined) throw new Error(`node ${node.id} has more token_ref entries than tokens`);
    return tokenRecord(state.table, token, state.candidatesApart);
  });
  return {...node, entries};
}

function nodeOf(state: RunState, nodeId: number): NodeState | null {
  const node = state.nodes.get(nodeId);
  if (node === undefined) {
    state.unknownNodes += 1;
    return null;
  }
  return node;
}

/** The nodes from the root to `nodeId` (default: the last added), oldest first; a parent
 * this view never received ends the walk. */
export function pathOf(state: RunState, nodeId: number | null = state.lastNodeId): NodeState[] {
  const path: NodeState[] = [];
  let current = nodeId === null ? undefined : state.nodes.get(nodeId);
  while (current !== undefined) {
    path.push(current);
    const parent = current.record.parent_id;
    current = parent === null ? undefined : state.nodes.get(parent);
  }
  return path.reverse();
}

/** Whether any node of the run is generating now. */
export function generating(state: RunState): boolean {
  for (const node of state.nodes.values()) if (node.state === "generating") return true;
  return false;
}
