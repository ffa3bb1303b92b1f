// Type-checked by tests/unit/test_protocol_schema.py (`tsc --noEmit -p client`), never run:
// it proves RudderMessage is a discriminated union on `type`, so a switch narrows it.
import type {ClientReady, RudderMessage, TokenRecord, WireToken} from "./protocol";

export function describe(message: RudderMessage): string {
  // @ts-expect-error `tokens` is not on every variant: the union must be narrowed first.
  void message.tokens;
  switch (message.type) {
    case "tokens_appended": {
      // Only TokensAppended has a list of tokens (Backtrack's `tokens` is a count), in the
      // wire form or, from a stored run of the first form, as records.
      const tokens: (WireToken | TokenRecord)[] = message.tokens;
      return `${message.node_id}: +${tokens.map((token) => ("kind" in token ? token.text : token.i)).join(" ")}`;
    }
    case "backtrack": {
      const count: number = message.tokens;
      return `${message.node_id}: -${count}`;
    }
    case "run_started":
    case "run_finished":
      return `${message.run.name} ${message.run.status}`;
    case "node_added":
      return `node ${message.node.id} of ${message.node.parent_id ?? "none"}`;
    case "capture":
      return `${message.capture.name}=${message.capture.value}`;
    case "metrics":
      return `${message.usage.output_tokens} tokens, ${message.samples.length} samples`;
    case "status":
      return `${message.state} ${message.message}`;
    case "reset":
      return `reset from ${message.first_seq}: ${message.reason}`;
    case "client_ready":
      return `ready after ${message.last_seq ?? "nothing"}`;
    case "replay_request":
      return `replay ${message.run_id} after ${message.after_seq}`;
    case "explore_request":
      return `explore ${message.node_id}[${message.token_index}] with ${message.token_id}`;
    case "detail_request":
      return `detail of ${message.node_id}[${message.token_index}]`;
    case "explore_answer":
      return `${message.request_id}: ${message.status} ${message.branch_node_id ?? message.error ?? ""}`;
    case "detail_answer":
      return `${message.request_id}: ${message.detail?.allowed_count ?? message.error ?? ""}`;
    default: {
      // Every variant is handled above: a new message type makes this a compile error.
      const unhandled: never = message;
      return unhandled;
    }
  }
}

export const ready: ClientReady = {type: "client_ready", v: 1, seq: 0, run_id: null, last_seq: null};

// @ts-expect-error the `type` tag is a literal: another message's tag does not fit.
export const wrongTag: ClientReady = {type: "replay_request", v: 1, seq: 0, run_id: null, last_seq: null};
