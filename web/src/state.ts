// What the client knows of one run, folded from the kernel's messages.
//
// Messages are folded strictly in `seq` order. One already held is ignored (a replay that
// overlaps what arrived live); one after a hole is not folded and sets `wantsReplayAfter`,
// which the client turns into a replay request. `reset` starts over from `first_seq`.
// Backtracked tokens are kept, marked, so that views can show what was taken back.

import type {
  CaptureRecord,
  NodeRecord,
  RunRecord,
  SystemSample,
  TokenRecord,
  Usage,
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
      revision: state.revision + 1,
    });
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
      state.nodes.set(message.node.id, {
        record: message.node,
        tokens: [],
        healedBytes: message.node.healed_bytes,
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
      const node = nodeOf(state, message.node_id);
      if (node === null) return;
      if (message.healed_bytes) {
        node.healedBytes += message.healed_bytes;
        node.appendOnly = false;
      }
      for (const record of message.tokens) node.tokens.push({record, backtracked: false});
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
