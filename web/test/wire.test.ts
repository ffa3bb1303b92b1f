// The compact wire form on the client: streams of the first form (recorded before it, under
// tests/fixtures/wire_v1) fold to the view state the Python view folded from them, and the
// wire form of real runs (fixtures/streams.json) expands into the same token records.
import {describe, expect, it, vi} from "vitest";

import type {ServerMessage} from "../src/messages";
import {pathText} from "../src/pieces";
import type {TableToken, TokenRecord, WireToken} from "../src/protocol";
import type {RunState} from "../src/state";
import {CandidatesApart, applyMessage, createRunState, tokenRecord} from "../src/state";
import firstForm from "../../tests/fixtures/wire_v1/streams.json";
import {Stream, text} from "./messages";
import {streams} from "./streams";

interface FirstFormRun {
  run_id: string;
  messages: ServerMessage[];
  view: {text: string; node_texts: Record<string, string>; nodes: Record<string, {tokens: TokenRecord[]}>};
}

const recorded = firstForm as unknown as Record<string, FirstFormRun>;

/** A record as JSON gives it: a streamed token's candidates are getters, made when read. */
function plain(record: unknown): unknown {
  return JSON.parse(JSON.stringify(record));
}

function fold(messages: ServerMessage[]): RunState {
  const state = createRunState();
  for (const message of messages) expect(applyMessage(state, message)).toBe("applied");
  return state;
}

describe("streams of the first form", () => {
  for (const [name, run] of Object.entries(recorded)) {
    it(`${name}: fold to the Python view's text and tokens`, () => {
      const state = fold(run.messages);
      expect(pathText(state)).toBe(run.view.text);
      for (const [id, node] of Object.entries(run.view.nodes)) {
        const tokens = state.nodes.get(Number(id))!.tokens.filter((t) => !t.backtracked).map((t) => t.record);
        expect(tokens).toEqual(node.tokens);
        expect(pathText(state, Number(id))).toBe(run.view.node_texts[id]);
      }
    });
  }
});

describe("the wire form", () => {
  it("names each token id once per run, and every token it sends is in the table", () => {
    for (const stream of Object.values(streams)) {
      const named: number[] = [];
      for (const message of stream.messages) {
        if (message.type !== "tokens_appended") continue;
        named.push(...message.table.map((entry) => entry.id));
        for (const token of message.tokens) {
          expect("kind" in token).toBe(false);
          const wire = token as WireToken;
          for (const id of [wire.i, ...wire.c.map(([c]) => c)]) expect(named).toContain(id);
        }
      }
      expect(new Set(named).size).toBe(named.length);
    }
  });

  it("expands a token: candidates from the table, refusals and allowed positions derived", () => {
    const table = new Map<number, TableToken>([
      [1, {id: 1, text: "日", bytes_b64: null}],
      [2, {id: 2, text: "\ufffd", bytes_b64: "5g=="}],
      [3, {id: 3, text: "</script>", bytes_b64: null}],
    ]);
    const wire: WireToken = {i: 1, s: "g", p: 0.5, l: 0.001, c: [[1, 0.5], [3, 0.3]], d: [1], a: [0, [2, 0.1]], x: false};
    const record = tokenRecord(table, wire);
    expect(plain(record)).toEqual({
      kind: "token",
      id: 1,
      text: "日",
      bytes_b64: null,
      source: "generated",
      prob: 0.5,
      latency_s: 0.001,
      top: [
        {id: 1, text: "日", bytes_b64: null, prob: 0.5, allowed: true},
        {id: 3, text: "</script>", bytes_b64: null, prob: 0.3, allowed: false},
      ],
      top_allowed: [
        {id: 1, text: "日", bytes_b64: null, prob: 0.5, allowed: true},
        {id: 2, text: "\ufffd", bytes_b64: "5g==", prob: 0.1, allowed: true},
      ],
      special: false,
    });
    expect(() => tokenRecord(table, {...wire, i: 9})).toThrow("token 9 is not in the run's token table");
    expect(() => tokenRecord(table, {...wire, a: [5]})).toThrow("position 5");
    // Refused when folded, not later when the tooltip reads the candidates.
    expect(() => tokenRecord(table, {...wire, c: [[9, 0.5]]})).toThrow("token 9 is not in the run's token table");
    expect(() => tokenRecord(table, {...wire, a: [[9, 0.5]]})).toThrow("token 9 is not in the run's token table");
  });

  it("makes a token's candidates when first read, once, from the run's table", () => {
    const state = createRunState();
    const read = vi.spyOn(state.table, "get");
    for (const message of streams.split_characters.messages) expect(applyMessage(state, message)).toBe("applied");
    const records = [...state.nodes.values()].flatMap((node) => node.tokens.map((t) => t.record));
    expect(records.length).toBe(29);
    // Folding read each token's own entry, and no candidate's.
    expect(read).toHaveBeenCalledTimes(records.length);
    const record = records.find((r) => r.top_allowed !== null && r.top.some((c) => !c.allowed))!;
    expect(read.mock.calls.length).toBeGreaterThan(records.length); // found by reading candidates
    read.mockClear();
    const other = records.find((r) => r !== record && r.top.length > 1)!;
    expect(read).toHaveBeenCalledTimes(other.top.length);
    read.mockClear();
    expect(record.top).toBe(record.top);
    expect(record.top_allowed).toBe(record.top_allowed);
    expect(read).not.toHaveBeenCalled(); // made once, then kept
    read.mockRestore();
  });

  it("gives a token the same candidates whether read before or after more messages arrive", () => {
    for (const [name, stream] of Object.entries(streams)) {
      const late = fold(stream.messages);
      for (let cut = 1; cut < stream.messages.length; cut++) {
        const early = fold(stream.messages.slice(0, cut));
        const readEarly = [...early.nodes.values()].map((node) => plain(node.tokens));
        for (const message of stream.messages.slice(cut)) applyMessage(early, message);
        const tokensOf = (state: RunState, id: number) => plain(state.nodes.get(id)!.tokens);
        const ids = [...early.nodes.keys()].slice(0, readEarly.length);
        ids.forEach((id, n) => {
          // Read before the rest came: as the same records read after it, and as a view
          // that folded everything before reading anything (backtrack flags aside).
          const unflagged = (tokens: unknown) => (tokens as {record: unknown}[]).map((t) => t.record);
          const before = unflagged(readEarly[n]);
          expect(unflagged(tokensOf(early, id)).slice(0, before.length), `${name}, cut ${cut}`).toEqual(before);
          expect(unflagged(tokensOf(late, id)).slice(0, before.length), `${name}, cut ${cut}`).toEqual(before);
        });
      }
    }
  });

  it("a reset hands on the table of the messages it dropped", () => {
    const state = createRunState("r");
    const base = {v: 1 as const, run_id: "r"};
    applyMessage(state, {...base, seq: 40, type: "reset", reason: "test", first_seq: 40, table: [{id: 7, text: "x", bytes_b64: null}]});
    applyMessage(state, {
      ...base,
      seq: 40,
      type: "node_added",
      node: {
        id: 1,
        parent_id: null,
        run_id: "r",
        input: {kind: "grammar", value: ""},
        entries: [],
        healed_bytes: 0,
        echo: true,
        hidden: false,
        hidden_chars: null,
        created_at: 0,
        usage: null,
        explored: null,
      },
    });
    const token: WireToken = {i: 7, s: "g", p: 1, l: 0, c: [], d: [], a: null, x: false};
    applyMessage(state, {...base, seq: 41, type: "tokens_appended", node_id: 1, healed_bytes: 0, table: [], tokens: [token]});
    expect(pathText(state)).toBe("x");
  });
});

describe("healing cuts", () => {
  it("are applied as the stream gives them, on the paths through the healing node only", () => {
    const s = new Stream();
    s.textNode(1, null, "See ht");
    s.textNode(2, 1, "tp");
    // Node 3 heals "http" (2 bytes of each node); node 4 branches from node 2 and heals nothing.
    s.node(3, 2, {entries: [text("https://x")], healed_bytes: 4});
    (s.messages[s.messages.length - 1] as Extract<ServerMessage, {type: "node_added"}>).cuts = [
      {node_id: 2, bytes: 2},
      {node_id: 1, bytes: 2},
    ];
    s.node(4, 2, {entries: [text("!")]});
    const state = fold(s.messages);
    expect(pathText(state, 3)).toBe("See https://x");
    expect(pathText(state, 4)).toBe("See http!");
  });

  it("of the first form (healed bytes alone) are worked out by the publisher's rule", () => {
    const s = new Stream();
    s.textNode(1, null, "See ht");
    s.textNode(2, 1, "tp");
    s.node(3, 2, {entries: [text("https://x")], healed_bytes: 4});
    const state = fold(s.messages);
    expect(state.nodes.get(3)!.cuts).toBeNull();
    expect(pathText(state, 3)).toBe("See https://x");
  });
});

describe("a complete node's tokens", () => {
  it("come in the message, one per token_ref entry, and show as the first form's records", () => {
    const s = new Stream();
    const wire: WireToken[] = [
      {i: 5, s: "g", p: 0.9, l: 0.01, c: [[5, 0.9]], d: [], a: null, x: false},
      {i: 6, s: "f", p: null, l: 0, c: [], d: [], a: null, x: false},
    ];
    s.node(1, null, {entries: [text("Q="), {kind: "token_ref"}, {kind: "token_ref"}]});
    const added = s.messages[0] as Extract<ServerMessage, {type: "node_added"}>;
    added.tokens = wire;
    added.table = [
      {id: 5, text: "</script>", bytes_b64: null},
      {id: 6, text: "\ufffd", bytes_b64: "8J8="},
    ];
    const state = fold(s.messages);
    const entries = state.nodes.get(1)!.record.entries;
    expect(entries.map((e) => e.kind)).toEqual(["text", "token", "token"]);
    expect(plain(entries[1])).toEqual({
      kind: "token",
      id: 5,
      text: "</script>",
      bytes_b64: null,
      source: "generated",
      prob: 0.9,
      latency_s: 0.01,
      top: [{id: 5, text: "</script>", bytes_b64: null, prob: 0.9, allowed: true}],
      top_allowed: null,
      special: false,
    });
    expect((entries[2] as TokenRecord).bytes_b64).toBe("8J8=");
    expect(pathText(state)).toBe("Q=</script>\ufffd");
  });
});

/** A stream as the inline page holds it (rudder/visual/html/_page.py `candidates_apart`):
 * each streamed token without its candidates, and those, in order, as JSON. */
function apart(messages: ServerMessage[]): {messages: ServerMessage[]; candidates: string} {
  const copy = JSON.parse(JSON.stringify(messages)) as ServerMessage[];
  const candidates: unknown[] = [];
  for (const message of copy) {
    if (message.type !== "tokens_appended" && message.type !== "node_added") continue;
    for (const token of (message.tokens ?? []) as Partial<WireToken>[]) {
      if ("kind" in token) continue;
      candidates.push([token.c, token.d, token.a]);
      delete token.c;
      delete token.d;
      delete token.a;
    }
  }
  return {messages: copy, candidates: JSON.stringify(candidates)};
}

function records(state: RunState): unknown {
  return plain([...state.nodes.values()].map((node) => node.tokens));
}

describe("candidates apart from their tokens (the inline page)", () => {
  it("fold to the same view state, given at once or when a token's are first read", () => {
    for (const [name, stream] of Object.entries(streams)) {
      const whole = fold(stream.messages);
      const split = apart(stream.messages);
      const given = createRunState();
      given.candidatesApart = new CandidatesApart(split.candidates, split.messages);
      for (const message of split.messages) expect(applyMessage(given, message), name).toBe("applied");
      // Folded and shown without them: no token has its candidates yet.
      expect(pathText(given)).toBe(pathText(whole));
      const waiting = split.messages.flatMap((m) => (m.type === "tokens_appended" ? m.tokens : []));
      expect(waiting.every((token) => !("c" in token))).toBe(true);
      given.candidatesApart.give(given.table);
      expect(records(given), name).toEqual(records(whole));
      // Read first: the token asks for them.
      const read = createRunState();
      read.candidatesApart = new CandidatesApart(split.candidates, split.messages);
      for (const message of split.messages) applyMessage(read, message);
      const first = [...read.nodes.values()].flatMap((node) => node.tokens)[0];
      if (first !== undefined) expect(plain(first.record.top)).toEqual(plain(first.record).top);
      expect(records(read), name).toEqual(records(whole));
    }
  });

  it("are checked when given: a name the table lacks, or too few, is refused", () => {
    const stream = streams.split_characters.messages;
    const split = apart(stream);
    const unnamed = JSON.parse(split.candidates) as [[number, number][], number[], unknown][];
    unnamed.find(([c]) => c.length > 0)![0][0][0] = 99_999;
    for (const [candidates, error] of [
      [JSON.stringify(unnamed), "token 99999 is not in the run's token table"],
      [JSON.stringify(unnamed.slice(1)), "not as many"],
    ] as const) {
      // Giving fills the messages' tokens in: each case folds messages of its own.
      const {messages} = apart(stream);
      const state = createRunState();
      state.candidatesApart = new CandidatesApart(candidates, messages);
      for (const message of messages) applyMessage(state, message);
      expect(() => state.candidatesApart?.give(state.table)).toThrow(error);
    }
    // A token without its candidates and none apart is refused when folded.
    const state = createRunState();
    const {messages} = apart(stream);
    expect(() => messages.forEach((message) => applyMessage(state, message))).toThrow("comes without its candidates");
  });
});
