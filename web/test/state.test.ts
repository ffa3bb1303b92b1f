import {describe, expect, it} from "vitest";

import type {ServerMessage} from "../src/messages";
import type {RunState} from "../src/state";
import {MAX_SAMPLES, applyMessage, applyMessages, createRunState, generating, pathOf} from "../src/state";
import {RUN, Stream, capture, reset, roleOpen, sample, text, token, usage} from "./messages";
import {streams} from "./streams";

function fold(messages: Iterable<ServerMessage>, runId: string | null = null): RunState {
  const state = createRunState(runId);
  for (const message of messages) expect(applyMessage(state, message)).toBe("applied");
  return state;
}

/** A copy of `state` to compare with it later (Maps and nested records included). */
function snapshot(state: RunState): RunState {
  return structuredClone(state);
}

/** A small run: a text node, a generation streaming three batches, a capture, the end. */
function smallRun(): Stream {
  const s = new Stream();
  s.runStarted();
  s.textNode(1, null, "Q=");
  s.generation(2, 1);
  s.status(2, "generating");
  s.tokens(2, [token("a")]);
  s.tokens(2, [token("b"), token("c")]);
  s.tokens(2, [token("d")]);
  s.capture(2, capture("x", "abcd"));
  s.metrics(2, {usage: usage({generated_tokens: 4})});
  s.status(2, "idle");
  s.metrics(null, {usage: usage({generations: 1, output_tokens: 4})});
  s.runFinished({usage: usage({generations: 1, output_tokens: 4})});
  return s;
}

function tokenTexts(state: RunState, nodeId: number): string[] {
  return state.nodes.get(nodeId)!.tokens.map((t) => t.record.text);
}

function backtrackedFlags(state: RunState, nodeId: number): boolean[] {
  return state.nodes.get(nodeId)!.tokens.map((t) => t.backtracked);
}

describe("folding messages", () => {
  it("starts empty", () => {
    const state = createRunState();
    expect(state.runId).toBeNull();
    expect(state.lastSeq).toBe(-1);
    expect(state.nodes.size).toBe(0);
    expect(state.lastNodeId).toBeNull();
    expect(state.wantsReplayAfter).toBeNull();
  });

  it("folds run_started, node_added and tokens_appended", () => {
    const s = new Stream();
    const started = s.runStarted({name: "my run", usage: usage({prompt_tokens: 7})});
    const added = s.node(1, null, {entries: [roleOpen("user"), text("Hi")], input: {kind: "text", value: "Hi"}});
    s.generation(2, 1, {healed_bytes: 0});
    const first = token("Hel");
    s.tokens(2, [first]);
    const state = fold(s.messages);

    expect(state.runId).toBe(RUN);
    expect(state.run).toEqual(started.run);
    expect(state.run!.name).toBe("my run");
    expect(state.usage).toEqual(usage({prompt_tokens: 7}));
    expect(state.lastSeq).toBe(3);
    expect(state.revision).toBe(4);
    expect([...state.nodes.keys()]).toEqual([1, 2]);
    expect(state.lastNodeId).toBe(2);

    const node = state.nodes.get(1)!;
    expect(node.record).toEqual(added.node);
    expect(node.tokens).toEqual([]);
    expect(node.state).toBe("");
    expect(node.appendOnly).toBe(true);

    const generation = state.nodes.get(2)!;
    expect(generation.tokens).toEqual([{record: first, backtracked: false}]);
    expect(generation.healedBytes).toBe(0);
    expect(generation.revision).toBe(1);
    expect(generation.appendOnly).toBe(true);
  });

  it("appends tokens across batches in order", () => {
    const state = fold(smallRun().messages);
    expect(tokenTexts(state, 2)).toEqual(["a", "b", "c", "d"]);
    expect(backtrackedFlags(state, 2)).toEqual([false, false, false, false]);
    const node = state.nodes.get(2)!;
    expect(node.appendOnly).toBe(true);
    expect(node.captures).toEqual([capture("x", "abcd")]);
  });

  it("folds run_finished: the run's record and usage", () => {
    const s = smallRun();
    const state = fold(s.messages);
    expect(state.run!.status).toBe("done");
    expect(state.run!.finished_at).toBe(102.5);
    expect(state.usage).toEqual(usage({generations: 1, output_tokens: 4}));
  });

  it("bumps the state's revision on every applied message", () => {
    const s = smallRun();
    const state = createRunState();
    s.messages.forEach((message, i) => {
      applyMessage(state, message);
      expect(state.revision).toBe(i + 1);
    });
  });

  it("applyMessages says whether any message was applied", () => {
    const s = smallRun();
    const state = createRunState();
    expect(applyMessages(state, s.messages.slice(0, 3))).toBe(true);
    expect(applyMessages(state, s.messages.slice(0, 3))).toBe(false);
    expect(applyMessages(state, s.messages.slice(1, 5))).toBe(true);
    expect(state.lastSeq).toBe(4);
  });

  it("keeps a capture on its node and bumps the node's revision", () => {
    const s = new Stream();
    s.generation(1, null);
    s.capture(1, capture("city", "Paris"));
    const state = fold(s.messages);
    const node = state.nodes.get(1)!;
    expect(node.captures).toEqual([capture("city", "Paris")]);
    expect(node.revision).toBe(1);
  });
});

describe("backtracking", () => {
  it("marks the last N tokens backtracked and keeps them", () => {
    const s = new Stream();
    s.generation(1, null);
    s.tokens(1, [token("a"), token("b"), token("c"), token("d")]);
    s.backtrack(1, 2);
    const state = fold(s.messages);
    expect(tokenTexts(state, 1)).toEqual(["a", "b", "c", "d"]);
    expect(backtrackedFlags(state, 1)).toEqual([false, false, true, true]);
  });

  it("a second backtrack after new tokens skips the tokens already backtracked", () => {
    const s = new Stream();
    s.generation(1, null);
    s.tokens(1, [token("a"), token("b"), token("c"), token("d")]);
    s.backtrack(1, 2);
    s.tokens(1, [token("e"), token("f")]);
    s.backtrack(1, 3);
    const state = fold(s.messages);
    expect(tokenTexts(state, 1)).toEqual(["a", "b", "c", "d", "e", "f"]);
    // f and e, then (c and d being taken back already) b.
    expect(backtrackedFlags(state, 1)).toEqual([false, true, true, true, true, true]);
  });

  it("a backtrack of more tokens than are left marks them all", () => {
    const s = new Stream();
    s.generation(1, null);
    s.tokens(1, [token("a"), token("b")]);
    s.backtrack(1, 5);
    const state = fold(s.messages);
    expect(backtrackedFlags(state, 1)).toEqual([true, true]);
  });

  it("only touches the node it names", () => {
    const s = new Stream();
    s.generation(1, null);
    s.tokens(1, [token("a")]);
    s.generation(2, 1);
    s.tokens(2, [token("b")]);
    s.backtrack(2, 1);
    const state = fold(s.messages);
    expect(backtrackedFlags(state, 1)).toEqual([false]);
    expect(backtrackedFlags(state, 2)).toEqual([true]);
    expect(state.nodes.get(1)!.appendOnly).toBe(true);
  });
});

describe("appendOnly and the node's revision", () => {
  it("stays append-only while changes only add tokens", () => {
    const s = new Stream();
    s.generation(1, null);
    const state = fold(s.messages);
    const node = state.nodes.get(1)!;
    expect(node.revision).toBe(0);
    for (let i = 1; i <= 3; i++) {
      applyMessage(state, s.tokens(1, [token(`t${i}`)]));
      expect(node.revision).toBe(i);
      expect(node.appendOnly).toBe(true);
    }
  });

  it("turns false on a backtrack, and the revision bumps", () => {
    const s = new Stream();
    s.generation(1, null);
    s.tokens(1, [token("a"), token("b")]);
    const state = fold(s.messages);
    const node = state.nodes.get(1)!;
    const before = node.revision;
    expect(applyMessage(state, s.backtrack(1, 1))).toBe("applied");
    expect(node.appendOnly).toBe(false);
    expect(node.revision).toBe(before + 1);
    // It stays false: later tokens do not make the node append-only again.
    applyMessage(state, s.tokens(1, [token("c")]));
    expect(node.appendOnly).toBe(false);
    expect(node.revision).toBe(before + 2);
  });

  it("turns false on healing, which adds up healed bytes", () => {
    const s = new Stream();
    s.textNode(1, null, "See http:");
    s.generation(2, 1);
    const state = fold(s.messages);
    const node = state.nodes.get(2)!;
    applyMessage(state, s.tokens(2, [token("://")], 1));
    expect(node.appendOnly).toBe(false);
    expect(node.healedBytes).toBe(1);
    expect(node.revision).toBe(1);
    applyMessage(state, s.tokens(2, [token("www")], 2));
    expect(node.healedBytes).toBe(3);
    expect(node.revision).toBe(2);
  });

  it("healed bytes of a node sent complete come from its record", () => {
    const s = new Stream();
    s.textNode(1, null, "http:");
    s.node(2, 1, {entries: [token("://")], healed_bytes: 1});
    const state = fold(s.messages);
    expect(state.nodes.get(2)!.healedBytes).toBe(1);
  });

  it("turns false when a hidden node's size arrives", () => {
    const s = new Stream();
    s.generation(1, null, {hidden: true});
    s.metrics(1, {hiddenChars: 12});
    const state = fold(s.messages);
    const node = state.nodes.get(1)!;
    expect(node.appendOnly).toBe(false);
    expect(node.revision).toBe(1);
  });
});

describe("sequence numbers", () => {
  it("ignores a message already held and changes nothing", () => {
    const s = smallRun();
    const state = fold(s.messages.slice(0, 7));
    const before = snapshot(state);
    for (const message of s.messages.slice(0, 7)) {
      expect(applyMessage(state, message)).toBe("held");
    }
    expect(state).toEqual(before);
    expect(tokenTexts(state, 2)).toEqual(["a", "b", "c", "d"]);
  });

  it("holds back a message after a hole and asks for a replay after the last held seq", () => {
    const s = smallRun();
    const state = fold(s.messages.slice(0, 4));
    const before = snapshot(state);
    expect(applyMessage(state, s.messages[5])).toBe("gap");
    expect(state.wantsReplayAfter).toBe(3);
    expect(state.gaps).toBe(1);
    expect(state).toEqual({...before, wantsReplayAfter: 3, gaps: 1});
    expect(state.nodes.get(2)!.tokens).toEqual([]);
  });

  it("counts one gap per hole, not per message after it", () => {
    const s = smallRun();
    const state = fold(s.messages.slice(0, 4));
    for (const message of s.messages.slice(6)) expect(applyMessage(state, message)).toBe("gap");
    expect(state.gaps).toBe(1);
    expect(state.wantsReplayAfter).toBe(3);
    expect(state.lastSeq).toBe(3);
  });

  it("counts a second hole once the first is filled", () => {
    const s = smallRun();
    const m = s.messages;
    const state = fold(m.slice(0, 3));
    expect(applyMessage(state, m[4])).toBe("gap");
    expect(applyMessages(state, m.slice(3, 6))).toBe(true);
    expect(state.wantsReplayAfter).toBeNull();
    expect(state.lastSeq).toBe(5);
    expect(applyMessage(state, m[8])).toBe("gap");
    expect(applyMessage(state, m[9])).toBe("gap");
    expect(state.gaps).toBe(2);
    expect(state.wantsReplayAfter).toBe(5);
  });

  it("a replay after a hole ends with the state of the whole stream in order", () => {
    const s = smallRun();
    const m = s.messages;
    const full = fold(m);

    const state = createRunState();
    applyMessages(state, m.slice(0, 4));
    // Message 4 is lost; the next ones arrive live and are held back.
    for (const message of m.slice(5, 8)) expect(applyMessage(state, message)).toBe("gap");
    const after = state.wantsReplayAfter!;
    expect(after).toBe(3);
    // The replay: everything after `after` (the missing message, then the later ones again),
    // with a live message that arrives twice on the way.
    const replay = m.filter((message) => message.seq > after);
    for (const message of replay) expect(applyMessage(state, message)).toBe("applied");
    expect(applyMessage(state, m[m.length - 1])).toBe("held");

    expect(state.gaps).toBe(1);
    expect(state.wantsReplayAfter).toBeNull();
    expect({...state, gaps: 0}).toEqual(full);
    expect(tokenTexts(state, 2)).toEqual(["a", "b", "c", "d"]);
  });

  it("a replay after any lost message of a real stream gives the state of the whole stream", () => {
    for (const [name, stream] of Object.entries(streams)) {
      const m = stream.messages;
      const full = fold(m);
      for (let lost = 0; lost < m.length - 1; lost++) {
        const state = createRunState();
        applyMessages(state, [...m.slice(0, lost), ...m.slice(lost + 1)]);
        expect(state.gaps, `${name}, message ${lost} lost`).toBe(1);
        expect(state.wantsReplayAfter).toBe(lost - 1);
        expect(state.lastSeq).toBe(lost - 1);
        applyMessages(state, m.filter((message) => message.seq > state.wantsReplayAfter!));
        expect({...state, gaps: 0}, `${name}, message ${lost} lost`).toEqual(full);
      }
    }
  });

  it("a first message after seq 0 is a gap: replay everything", () => {
    const s = smallRun();
    const state = createRunState();
    expect(applyMessage(state, s.messages[3])).toBe("gap");
    expect(state.wantsReplayAfter).toBe(-1);
    expect(state.gaps).toBe(1);
    expect(state.lastSeq).toBe(-1);
    expect(state.nodes.size).toBe(0);
    expect(state.revision).toBe(0);
    applyMessages(state, s.messages);
    expect({...state, gaps: 0}).toEqual(fold(s.messages));
  });

  it("a reset clears the state and resumes at first_seq, keeping the gap count", () => {
    const s = smallRun();
    const m = s.messages;
    const state = createRunState();
    applyMessages(state, m.slice(0, 6));
    applyMessage(state, m[8]); // a hole
    expect(state.gaps).toBe(1);
    const revision = state.revision;

    expect(applyMessage(state, reset(4))).toBe("applied");
    expect(state.runId).toBe(RUN);
    expect(state.run).toBeNull();
    expect(state.nodes.size).toBe(0);
    expect(state.lastNodeId).toBeNull();
    expect(state.usage).toBeNull();
    expect(state.samples).toEqual([]);
    expect(state.lastSeq).toBe(3);
    expect(state.wantsReplayAfter).toBeNull();
    expect(state.unknownNodes).toBe(0);
    expect(state.gaps).toBe(1);
    expect(state.revision).toBeGreaterThan(revision);

    // What comes before first_seq is held; the stream goes on from first_seq.
    expect(applyMessage(state, m[2])).toBe("held");
    expect(applyMessage(state, m[4])).toBe("applied");
    expect(state.lastSeq).toBe(4);
    // Node 2 was added before first_seq: its tokens are about a node this view lost.
    expect(state.unknownNodes).toBe(1);
  });

  it("a reset to seq 0 then the whole stream gives the state of the whole stream", () => {
    const s = smallRun();
    const state = fold(s.messages.slice(0, 8));
    applyMessage(state, reset(0));
    expect(state.lastSeq).toBe(-1);
    applyMessages(state, s.messages);
    expect({...state, revision: 0}).toEqual({...fold(s.messages), revision: 0});
  });
});

describe("runs", () => {
  it("takes the run id of its first message", () => {
    const state = createRunState();
    applyMessage(state, new Stream("other").runStarted());
    expect(state.runId).toBe("other");
  });

  it("ignores messages of another run", () => {
    const s = smallRun();
    const state = fold(s.messages.slice(0, 5), RUN);
    const before = snapshot(state);
    const other = new Stream("run-2");
    other.runStarted();
    other.textNode(1, null, "elsewhere");
    other.textNode(2, 1, "more");
    other.textNode(3, 2, "seq 2 would come next here");
    other.textNode(4, 3, "and 3");
    other.textNode(5, 4, "and 4");
    other.textNode(6, 5, "seq 6: would be a gap");
    for (const message of other.messages) expect(applyMessage(state, message)).toBe("other-run");
    expect(applyMessage(state, reset(0, "run-2"))).toBe("other-run");
    expect(state).toEqual(before);
  });
});

describe("metrics", () => {
  it("without a node: the run's usage", () => {
    const s = new Stream();
    s.runStarted();
    s.metrics(null, {usage: usage({output_tokens: 9})});
    const state = fold(s.messages);
    expect(state.usage).toEqual(usage({output_tokens: 9}));
  });

  it("with a node: the node's usage and hidden size, not the run's", () => {
    const s = new Stream();
    s.runStarted({usage: usage({prompt_tokens: 3})});
    s.generation(1, null, {hidden: true});
    s.metrics(1, {usage: usage({generated_tokens: 5}), hiddenChars: 42});
    const state = fold(s.messages);
    const node = state.nodes.get(1)!;
    expect(node.usage).toEqual(usage({generated_tokens: 5}));
    expect(node.hiddenChars).toBe(42);
    expect(state.usage).toEqual(usage({prompt_tokens: 3}));
  });

  it("keeps the samples in order", () => {
    const s = new Stream();
    s.metrics(null, {samples: [sample({time_s: 1}), sample({time_s: 2})]});
    s.metrics(null, {samples: [sample({time_s: 3})]});
    const state = fold(s.messages);
    expect(state.samples.map((x) => x.time_s)).toEqual([1, 2, 3]);
  });

  it("keeps at most MAX_SAMPLES samples, dropping the oldest", () => {
    const s = new Stream();
    const times = Array.from({length: MAX_SAMPLES + 25}, (_, i) => i);
    s.metrics(null, {samples: times.slice(0, 100).map((time_s) => sample({time_s}))});
    s.metrics(null, {samples: times.slice(100).map((time_s) => sample({time_s}))});
    s.metrics(null, {samples: []});
    const state = fold(s.messages);
    expect(state.samples).toHaveLength(MAX_SAMPLES);
    expect(state.samples.map((x) => x.time_s)).toEqual(times.slice(25));
  });

  it("samples that come with a node's usage are kept too", () => {
    const s = new Stream();
    s.generation(1, null);
    s.metrics(1, {samples: [sample({time_s: 7})]});
    const state = fold(s.messages);
    expect(state.samples.map((x) => x.time_s)).toEqual([7]);
  });
});

describe("status", () => {
  it("sets a node's state and error", () => {
    const s = new Stream();
    s.generation(1, null);
    s.status(1, "generating");
    const state = fold(s.messages);
    const node = state.nodes.get(1)!;
    expect(node.state).toBe("generating");
    expect(generating(state)).toBe(true);

    applyMessage(state, s.status(1, "error", "CUDA out of memory"));
    expect(node.state).toBe("error");
    expect(node.error).toBe("CUDA out of memory");
    expect(generating(state)).toBe(false);
  });

  it("generating() is true while any node generates", () => {
    const s = new Stream();
    s.generation(1, null);
    s.generation(2, 1);
    const state = fold(s.messages);
    expect(generating(state)).toBe(false);
    applyMessage(state, s.status(1, "generating"));
    applyMessage(state, s.status(2, "generating"));
    applyMessage(state, s.status(1, "idle"));
    expect(generating(state)).toBe(true);
    applyMessage(state, s.status(2, "idle"));
    expect(generating(state)).toBe(false);
    expect(state.nodes.get(2)!.state).toBe("idle");
  });

  it("a run's status (no node) changes no node", () => {
    const s = new Stream();
    s.generation(1, null);
    s.status(null, "error", "boom");
    const state = fold(s.messages);
    expect(state.nodes.get(1)!.state).toBe("");
    expect(state.nodes.get(1)!.error).toBe("");
    expect(state.unknownNodes).toBe(0);
  });
});

describe("unknown nodes", () => {
  it("counts messages about nodes this view never received", () => {
    const s = new Stream();
    s.runStarted();
    s.textNode(1, null, "x");
    s.tokens(99, [token("a")]);
    s.backtrack(99, 1);
    s.capture(99, capture("c", "v"));
    s.metrics(99, {hiddenChars: 3});
    s.status(99, "idle");
    s.metrics(null);
    s.status(null, "idle");
    s.tokens(1, [token("b")]);
    const state = fold(s.messages);
    expect(state.unknownNodes).toBe(5);
    expect([...state.nodes.keys()]).toEqual([1]);
    expect(tokenTexts(state, 1)).toEqual(["b"]);
    expect(state.lastSeq).toBe(s.messages.length - 1);
  });
});

describe("pathOf", () => {
  function tree(): RunState {
    const s = new Stream();
    s.textNode(1, null, "a");
    s.textNode(2, 1, "b");
    s.textNode(3, 2, "c");
    s.textNode(4, 2, "d"); // a branch from node 2, added last
    return fold(s.messages);
  }
  const ids = (path: {record: {id: number}}[]) => path.map((node) => node.record.id);

  it("goes from the root to the last node added", () => {
    expect(ids(pathOf(tree()))).toEqual([1, 2, 4]);
  });

  it("goes to the node it is given", () => {
    const state = tree();
    expect(ids(pathOf(state, 3))).toEqual([1, 2, 3]);
    expect(ids(pathOf(state, 1))).toEqual([1]);
    expect(pathOf(state, 3)[2]).toBe(state.nodes.get(3));
  });

  it("stops at a parent this view never received", () => {
    const s = new Stream();
    s.textNode(1, null, "a");
    s.textNode(5, 4, "e"); // node 4 never arrived
    s.textNode(6, 5, "f");
    const state = fold(s.messages);
    expect(ids(pathOf(state))).toEqual([5, 6]);
  });

  it("is empty without nodes or for an unknown node", () => {
    expect(pathOf(createRunState())).toEqual([]);
    expect(pathOf(tree(), 42)).toEqual([]);
  });
});
