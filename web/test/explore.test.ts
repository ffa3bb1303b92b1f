import {describe, expect, it} from "vitest";

import {branchFigures, branchLabel} from "../src/branches";
import {exploredNodes, mainNodeId, outputIndex, outputToken} from "../src/explore";
import {applyMessages, createRunState} from "../src/state";
import type {RunState} from "../src/state";
import {Stream, token, usage} from "./messages";

/** A program, then a branch explored from its generation's token 1 (with its path re-sent). */
function explored(): {state: RunState; stream: Stream} {
  const s = new Stream();
  s.runStarted();
  s.textNode(1, null, "City:");
  s.generation(2, 1);
  s.tokens(2, [token("P"), token("ar"), token("is")]);
  s.textNode(3, 2, " done");
  s.textNode(1, null, "City:");
  s.node(4, 1, {
    input: {kind: "grammar", value: "select"},
    entries: [token("P"), token("R", {id: 82}), token("ome")],
    explored: {node_id: 2, token_index: 1, token_id: 82},
  });
  const state = createRunState();
  applyMessages(state, s.messages);
  return {state, stream: s};
}

describe("explored branches", () => {
  it("leave the program shown as the last node that is not a branch", () => {
    const {state} = explored();
    expect(state.lastNodeId).toBe(4);
    expect(mainNodeId(state)).toBe(3);
    expect(exploredNodes(state).map((node) => node.record.id)).toEqual([4]);
  });

  it("count a token's place among its generation's output tokens, backtracked ones left out", () => {
    const {state, stream} = explored();
    const streamed = state.nodes.get(2);
    const branch = state.nodes.get(4);
    if (streamed === undefined || branch === undefined) throw new Error("nodes missing");
    expect(outputIndex(streamed, streamed.tokens[2].record)).toBe(2);
    const entries = branch.record.entries;
    expect(outputIndex(branch, entries[1] as never)).toBe(1);
    stream.backtrack(2, 1);
    stream.tokens(2, [token("X")]);
    applyMessages(state, stream.messages.slice(-2));
    const node = state.nodes.get(2);
    if (node === undefined) throw new Error("node missing");
    expect(outputIndex(node, node.tokens[3].record)).toBe(2);
    expect(outputIndex(node, token("elsewhere"))).toBeNull();
  });

  it("without a branch, show the last node", () => {
    const s = new Stream();
    s.runStarted();
    s.textNode(1, null, "Q");
    const state = createRunState();
    applyMessages(state, s.messages);
    expect(mainNodeId(state)).toBe(1);
  });
});

describe("a branch beside the program", () => {
  it("says which token it chose there and which the original took", () => {
    const {state} = explored();
    const branch = state.nodes.get(4);
    const original = state.nodes.get(2);
    if (branch === undefined || original === undefined) throw new Error("nodes missing");
    expect(outputToken(branch, 1)?.id).toBe(82);
    expect(outputToken(original, 1)?.text).toBe("ar");
    expect(outputToken(original, 9)).toBeNull();
    expect(branchLabel(state, branch)).toBe('explored from token 1 of step 2: "R" instead of "ar"');
  });

  it("shows its own figures once its usage came", () => {
    const {state, stream} = explored();
    const figures = () => branchFigures(state.nodes.get(4) as never);
    expect(figures()).toBe("");
    stream.metrics(4, {usage: usage({output_tokens: 3, generated_tokens: 2, forced_tokens: 1, forward_passes: 2, per_token_s: 0.004})});
    applyMessages(state, stream.messages.slice(-1));
    expect(figures()).toBe("3 tokens out (2 generated, 1 forced), 2 forward passes, 4.00 ms/token");
  });

  it("keeps hostile token text as text in its label", () => {
    const s = new Stream();
    s.runStarted();
    s.generation(2, null);
    s.tokens(2, [token("</script>")]);
    s.node(4, null, {
      input: {kind: "grammar", value: "gen()"},
      entries: [token("<|im_start|>\u001b[2J", {id: 9})],
      explored: {node_id: 2, token_index: 0, token_id: 9},
    });
    const state = createRunState();
    applyMessages(state, s.messages);
    const label = branchLabel(state, state.nodes.get(4) as never);
    expect(label).toContain("</script>");
    expect(label).not.toContain("\u001b");
  });
});
