import {describe, expect, it} from "vitest";

import type {ServerMessage} from "../src/messages";
import type {Piece} from "../src/pieces";
import {byteLength, cutBytes, nodePieces, pathParts, pathText} from "../src/pieces";
import type {RunState} from "../src/state";
import {applyMessage, createRunState} from "../src/state";
import type {CaptureRecord, BlockRecord} from "../src/protocol";
import {Stream, capture, roleClose, roleOpen, text, token} from "./messages";
import {streams} from "./streams";

function fold(messages: Iterable<ServerMessage>): RunState {
  const state = createRunState();
  for (const message of messages) expect(applyMessage(state, message)).toBe("applied");
  return state;
}

const textPiece = (value: string): Piece => ({kind: "text", text: value});

/** The pieces' text, labels shown as in pathText, backtracked tokens in brackets. */
function show(pieces: Piece[]): string {
  return pieces
    .map((piece) => {
      switch (piece.kind) {
        case "text":
          return piece.text;
        case "token":
          return piece.backtracked ? `[${piece.text}]` : piece.text;
        case "role_open":
          return `<${piece.role}>`;
        case "role_close":
          return `</${piece.role}>`;
        case "hidden":
          return `[hidden ${piece.chars}]`;
      }
    })
    .join("|");
}

describe("nodePieces", () => {
  it("gives text, token and role entries in order, without empty text", () => {
    const hi = token("!");
    const block: BlockRecord = {kind: "block", block_id: 1, name: "b", open: true};
    const captured: CaptureRecord = capture("x", "Hi");
    const s = new Stream();
    s.node(1, null, {
      entries: [roleOpen("user"), text("Hi"), block, hi, text(""), captured, roleClose("user")],
    });
    const state = fold(s.messages);
    expect(nodePieces(state.nodes.get(1)!)).toEqual([
      {kind: "role_open", role: "user"},
      {kind: "text", text: "Hi"},
      {kind: "token", token: hi, backtracked: false, text: "!"},
      {kind: "role_close", role: "user"},
    ]);
  });

  it("gives a generation's streamed tokens while it has no entries, backtracked ones marked", () => {
    const a = token("a");
    const b = token("b");
    const c = token("c");
    const s = new Stream();
    s.generation(1, null);
    s.tokens(1, [a, b]);
    s.tokens(1, [c]);
    s.backtrack(1, 1);
    const state = fold(s.messages);
    expect(nodePieces(state.nodes.get(1)!)).toEqual([
      {kind: "token", token: a, backtracked: false, text: "a"},
      {kind: "token", token: b, backtracked: false, text: "b"},
      {kind: "token", token: c, backtracked: true, text: "c"},
    ]);
  });

  it("gives a node's entries, not tokens streamed to it, once it has entries", () => {
    const kept = token("kept");
    const s = new Stream();
    s.node(1, null, {entries: [kept]});
    s.tokens(1, [token("stray")]);
    const state = fold(s.messages);
    expect(nodePieces(state.nodes.get(1)!)).toEqual([{kind: "token", token: kept, backtracked: false, text: "kept"}]);
  });

  it("gives a generation as it started nothing", () => {
    const s = new Stream();
    s.generation(1, null);
    expect(nodePieces(fold(s.messages).nodes.get(1)!)).toEqual([]);
  });

  it("gives a hidden node a placeholder with the size from its record", () => {
    const s = new Stream();
    s.node(1, null, {hidden: true, hidden_chars: 25});
    expect(nodePieces(fold(s.messages).nodes.get(1)!)).toEqual([{kind: "hidden", chars: 25}]);
  });

  it("gives a hidden generation the size its metrics bring, unknown before", () => {
    const s = new Stream();
    s.generation(1, null, {hidden: true});
    const state = fold(s.messages);
    const node = state.nodes.get(1)!;
    expect(nodePieces(node)).toEqual([{kind: "hidden", chars: null}]);
    applyMessage(state, s.metrics(1, {hiddenChars: 8}));
    expect(nodePieces(node)).toEqual([{kind: "hidden", chars: 8}]);
  });

  it("never shows a hidden node's text, even with entries or tokens", () => {
    const s = new Stream();
    s.node(1, null, {hidden: true, hidden_chars: 6, entries: [text("secret")]});
    s.generation(2, 1, {hidden: true});
    s.tokens(2, [token("secret")]);
    const state = fold(s.messages);
    expect(nodePieces(state.nodes.get(1)!)).toEqual([{kind: "hidden", chars: 6}]);
    expect(nodePieces(state.nodes.get(2)!)).toEqual([{kind: "hidden", chars: null}]);
  });

  it("gives a node made with echo off nothing when it comes without its text (a live view)", () => {
    const s = new Stream();
    s.node(1, null, {echo: false, entries: [], hidden_chars: 5});
    s.generation(2, 1, {echo: false});
    const state = fold(s.messages);
    expect(nodePieces(state.nodes.get(1)!)).toEqual([]);
    expect(nodePieces(state.nodes.get(2)!)).toEqual([]);
  });

  it("shows a node made with echo off that carries its text (an explicit export)", () => {
    const s = new Stream();
    s.node(1, null, {echo: false, entries: [text("quiet")]});
    expect(nodePieces(fold(s.messages).nodes.get(1)!)).toEqual([{kind: "text", text: "quiet"}]);
  });
});

describe("byteLength", () => {
  it("counts UTF-8 bytes of text", () => {
    expect(byteLength(textPiece("abc"))).toBe(3);
    expect(byteLength(textPiece("é"))).toBe(2);
    expect(byteLength(textPiece("日本"))).toBe(6);
    expect(byteLength(textPiece("🙂"))).toBe(4);
  });

  it("counts a token's own bytes, from bytes_b64 when it has them", () => {
    const plain = token("ü");
    const partial = token("\ufffd", {bytes: [0xc3]});
    expect(byteLength({kind: "token", token: plain, backtracked: false, text: "ü"})).toBe(2);
    expect(byteLength({kind: "token", token: partial, backtracked: false, text: "\ufffd"})).toBe(1);
  });

  it("counts nothing for backtracked tokens, labels and placeholders", () => {
    const t = token("abc");
    expect(byteLength({kind: "token", token: t, backtracked: true, text: "abc"})).toBe(0);
    expect(byteLength({kind: "role_open", role: "user"})).toBe(0);
    expect(byteLength({kind: "role_close", role: "user"})).toBe(0);
    expect(byteLength({kind: "hidden", chars: 10})).toBe(0);
  });
});

describe("cutBytes", () => {
  const tok = (value: string, backtracked = false, bytes?: number[]): Piece => ({
    kind: "token",
    token: token(value, bytes === undefined ? {} : {bytes}),
    backtracked,
    text: value,
  });

  it("takes whole pieces off the end", () => {
    const pieces = [textPiece("ab"), tok("cd"), tok("ef")];
    expect(show(cutBytes(pieces, 4))).toBe("ab");
    expect(show(cutBytes(pieces, 0))).toBe("ab|cd|ef");
    expect(show(cutBytes(pieces, 6))).toBe("");
    expect(show(cutBytes(pieces, 100))).toBe("");
  });

  it("cuts across pieces, keeping the rest of the one cut in part", () => {
    const pieces = [textPiece("ab"), tok("cd"), tok("ef")];
    expect(show(cutBytes(pieces, 3))).toBe("ab|c");
    expect(show(cutBytes(pieces, 5))).toBe("a");
    const cut = cutBytes(pieces, 3);
    expect(cut[1].kind).toBe("token");
    // A token cut in part stays a token (its record with it) with the rest of its text.
    expect(cut[1]).toEqual({...pieces[1], text: "c", bytes: new TextEncoder().encode("c")});
  });

  it("leaves its input alone", () => {
    const pieces = [textPiece("ab"), tok("cd")];
    const copy = structuredClone(pieces);
    cutBytes(pieces, 3);
    expect(pieces).toEqual(copy);
  });

  it("cuts inside a multi-byte piece by bytes, not characters", () => {
    expect(show(cutBytes([textPiece("café")], 2))).toBe("caf");
    expect(show(cutBytes([textPiece("日本")], 3))).toBe("日");
    expect(show(cutBytes([textPiece("aé")], 1))).toBe("a\ufffd"); // half a character
    expect(show(cutBytes([textPiece("a日")], 1))).toBe("a\ufffd");
    expect(show(cutBytes([textPiece("日本")], 4))).toBe("\ufffd");
    expect(show(cutBytes([textPiece("x"), tok("🙂")], 4))).toBe("x");
    expect(show(cutBytes([textPiece("xé"), tok("🙂")], 6))).toBe("x");
  });

  it("sizes a token by its own bytes when its text is not UTF-8 on its own", () => {
    // 0xC3 alone shows as U+FFFD (three bytes of UTF-8) but is one byte of model text.
    const pieces = [textPiece("ab"), tok("\ufffd", false, [0xc3])];
    expect(show(cutBytes(pieces, 1))).toBe("ab");
    expect(show(cutBytes(pieces, 2))).toBe("a");
  });

  it("skips role labels and placeholders: they are not model text", () => {
    const pieces: Piece[] = [
      textPiece("Hi"),
      {kind: "role_close", role: "user"},
      {kind: "hidden", chars: 3},
      {kind: "role_open", role: "assistant"},
      tok("x"),
    ];
    expect(show(cutBytes(pieces, 2))).toBe("H|</user>|[hidden 3]|<assistant>");
    expect(show(cutBytes(pieces, 3))).toBe("</user>|[hidden 3]|<assistant>");
  });

  it("skips backtracked tokens: they are no longer text", () => {
    const pieces = [textPiece("ab"), tok("cd"), tok("ef", true), tok("gh", true)];
    expect(show(cutBytes(pieces, 1))).toBe("ab|c|[ef]|[gh]");
    expect(show(cutBytes(pieces, 3))).toBe("a|[ef]|[gh]");
  });
});

describe("pathParts", () => {
  it("gives each node of the path its pieces", () => {
    const s = new Stream();
    s.node(1, null, {entries: [roleOpen("user")]});
    s.textNode(2, 1, "Hello");
    s.textNode(3, 2, "other branch");
    s.node(4, 2, {entries: [roleClose("user")]});
    const state = fold(s.messages);
    const parts = pathParts(state);
    expect(parts.map((part) => part.node.record.id)).toEqual([1, 2, 4]);
    expect(parts.map((part) => show(part.pieces))).toEqual(["<user>", "Hello", "</user>"]);
    expect(parts.map((part) => part.cut)).toEqual([0, 0, 0]);
    expect(pathParts(state, 3).map((part) => show(part.pieces))).toEqual(["<user>", "Hello", "other branch"]);
  });

  it("takes a node's healed bytes off the node before", () => {
    const s = new Stream();
    s.textNode(1, null, "See http:");
    s.generation(2, 1);
    s.tokens(2, [token("://")], 1);
    s.tokens(2, [token("www")]);
    const parts = pathParts(fold(s.messages));
    expect(parts.map((part) => show(part.pieces))).toEqual(["See http", "://|www"]);
    expect(parts.map((part) => part.cut)).toEqual([1, 0]);
  });

  it("takes healed bytes off two nodes when the node before is too short", () => {
    const s = new Stream();
    s.textNode(1, null, "See ht");
    s.textNode(2, 1, "tp");
    s.generation(3, 2);
    s.tokens(3, [token("https")], 4);
    const parts = pathParts(fold(s.messages));
    expect(parts.map((part) => show(part.pieces))).toEqual(["See ", "", "https"]);
    expect(parts.map((part) => part.cut)).toEqual([2, 2, 0]);
  });

  it("heals past role labels and echo-off nodes, never into them", () => {
    const s = new Stream();
    s.textNode(1, null, "ab:");
    s.node(2, 1, {echo: false, entries: [], hidden_chars: 5}); // sent without its text
    s.node(3, 2, {entries: [roleOpen("assistant")]});
    s.node(4, 3, {entries: [token("://")], healed_bytes: 2});
    const parts = pathParts(fold(s.messages));
    expect(parts.map((part) => show(part.pieces))).toEqual(["a", "", "<assistant>", "://"]);
    expect(parts.map((part) => part.cut)).toEqual([2, 0, 0, 0]);
  });

  it("applies every node's healing: each to the text before it", () => {
    const s = new Stream();
    s.textNode(1, null, "abcdef");
    s.node(2, 1, {entries: [token("XY")], healed_bytes: 2}); // abcd + XY
    s.node(3, 2, {entries: [token("Z")], healed_bytes: 3}); // abc + Z (Y, X and d)
    const parts = pathParts(fold(s.messages));
    expect(parts.map((part) => show(part.pieces))).toEqual(["abc", "", "Z"]);
    expect(parts.map((part) => part.cut)).toEqual([3, 2, 0]);
    expect(pathText(fold(s.messages))).toBe("abcZ");
  });

  it("does not count backtracked tokens as text to heal", () => {
    const s = new Stream();
    s.generation(1, null);
    s.tokens(1, [token("ab"), token("cd")]);
    s.backtrack(1, 1);
    s.generation(2, 1);
    s.tokens(2, [token("bX")], 1);
    const parts = pathParts(fold(s.messages));
    expect(parts.map((part) => show(part.pieces))).toEqual(["a|[cd]", "bX"]);
    expect(parts[0].cut).toBe(1);
  });
});

describe("pathText", () => {
  it("writes roles as markers, hidden nodes by size, and leaves backtracked tokens out", () => {
    const s = new Stream();
    s.node(1, null, {entries: [roleOpen("user"), text("Q?"), roleClose("user")]});
    s.node(2, 1, {hidden: true, hidden_chars: 12});
    s.generation(3, 2, {hidden: true});
    s.node(4, 3, {entries: [roleOpen("assistant")]});
    s.generation(5, 4);
    s.tokens(5, [token("Pa"), token("ris"), token("!!")]);
    s.backtrack(5, 1);
    s.node(6, 5, {entries: [roleClose("assistant")]});
    const state = fold(s.messages);
    expect(pathText(state)).toBe(
      "<user>Q?</user>[hidden: 12 characters][hidden]<assistant>Paris</assistant>",
    );
    expect(pathText(state, 2)).toBe("<user>Q?</user>[hidden: 12 characters]");
    expect(pathText(createRunState())).toBe("");
  });
});

describe("parity with the Python view (RunView.text) on recorded streams", () => {
  const names = Object.keys(streams);

  it("has the recorded streams", () => {
    expect(names).toEqual(
      expect.arrayContaining(["chat", "backtrack", "backtrack_batched", "healing_two_nodes", "utf8", "hidden", "echo_off"]),
    );
    const types = new Set(Object.values(streams).flatMap((s) => s.messages.map((m) => m.type)));
    for (const type of ["run_started", "node_added", "tokens_appended", "backtrack", "capture", "metrics", "status", "run_finished"]) {
      expect(types).toContain(type);
    }
  });

  it.each(names)("%s: the whole path", (name) => {
    const stream = streams[name];
    expect(pathText(fold(stream.messages))).toBe(stream.text);
  });

  it.each(names)("%s: the path to every node", (name) => {
    const stream = streams[name];
    const state = fold(stream.messages);
    expect(Object.keys(stream.node_texts).map(Number)).toEqual([...state.nodes.keys()]);
    for (const [id, expected] of Object.entries(stream.node_texts)) {
      expect(pathText(state, Number(id)), `node ${id}`).toBe(expected);
    }
  });

  it.each(names)("%s: after every message, as a live view shows it", (name) => {
    const stream = streams[name];
    const state = createRunState();
    stream.messages.forEach((message, i) => {
      expect(applyMessage(state, message)).toBe("applied");
      expect(pathText(state), `after message ${i} (${message.type})`).toBe(stream.prefix_texts[i]);
    });
  });

  it("the recorded streams show what they were made to show", () => {
    expect(streams.chat.text).toBe(
      "<system>Answer in one word.</system><user>Where is the Eiffel tower?</user>" +
        "<assistant>Paris See http://www.example.com</assistant>\nAgain:Paris",
    );
    expect(streams.backtrack.text).toBe("Say=ab again=abcde");
    expect(streams.backtrack.messages.some((m) => m.type === "backtrack")).toBe(true);
    expect(streams.healing_two_nodes.text).toBe("See https://x.org");
    const healed = streams.healing_two_nodes.messages.filter((m) => m.type === "tokens_appended" && m.healed_bytes > 0);
    expect(healed.map((m) => m.type === "tokens_appended" && m.healed_bytes)).toEqual([4]);
    expect(streams.utf8.messages.some((m) => m.type === "tokens_appended" && m.table.some((t) => t.bytes_b64 !== null))).toBe(true);
    expect(streams.hidden.text).toBe("Q=[hidden: 25 characters][hidden: 8 characters]!");
    expect(JSON.stringify(streams.hidden.messages)).not.toContain("hunter2");
    expect(streams.echo_off.text).toBe("Q=Paris");
  });
});
