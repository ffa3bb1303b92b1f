import {describe, expect, it} from "vitest";

import type {ServerMessage} from "../src/messages";
import {RunText, decodeRun, pathParts, pathText, unfinishedLength} from "../src/pieces";
import type {Piece} from "../src/pieces";
import type {RunState} from "../src/state";
import {applyMessage, createRunState} from "../src/state";
import {quoted, visibleText} from "../src/format";
import {Stream, roleOpen, token} from "./messages";

function fold(messages: Iterable<ServerMessage>): RunState {
  const state = createRunState();
  for (const message of messages) expect(applyMessage(state, message)).toBe("applied");
  return state;
}

const utf8 = (text: string) => [...new TextEncoder().encode(text)];

/** One token per byte of `text`, each carrying its own bytes as the protocol does. */
function byteTokens(text: string) {
  return utf8(text).map((byte) => token(byte < 0x80 ? String.fromCharCode(byte) : "\ufffd", byte < 0x80 ? {} : {bytes: [byte]}));
}

const texts = (pieces: Piece[]) => pieces.map((piece) => (piece.kind === "text" || piece.kind === "token" ? piece.text : "|"));

describe("visibleText", () => {
  it("writes C0, C1 and bidirectional controls as escapes, and leaves text alone", () => {
    expect(visibleText("\x1b[2J\x1b]0;title\x07")).toBe("\\x1b[2J\\x1b]0;title\\x07");
    expect(visibleText("\u009b31m\u009d0;t\u009c")).toBe("\\x9b31m\\x9d0;t\\x9c");
    expect(visibleText("abc\u202etxt.exe \u2066x\u2069 \u200f")).toBe("abc\\u202etxt.exe \\u2066x\\u2069 \\u200f");
    expect(visibleText("<|im_start|>system </script> 日本語 🎉 a\tb\nc")).toBe(
      "<|im_start|>system </script> 日本語 🎉 a\tb\nc",
    );
  });

  it("is applied to tooltip labels too", () => {
    expect(quoted("\x1b[31m\u202e")).toBe('"\\x1b[31m\\u202e"');
  });
});

describe("decoding per run", () => {
  it("knows an unfinished character at the end of some bytes", () => {
    expect(unfinishedLength(new Uint8Array([0x61, 0xe6]))).toBe(1);
    expect(unfinishedLength(new Uint8Array([0xe6, 0x97]))).toBe(2);
    expect(unfinishedLength(new Uint8Array([0xf0, 0x9f, 0x8e]))).toBe(3);
    expect(unfinishedLength(new Uint8Array([0xe6, 0x97, 0xa5]))).toBe(0);
    expect(unfinishedLength(new Uint8Array([0xe0, 0x80]))).toBe(0); // never a character
    expect(unfinishedLength(new Uint8Array([0x80]))).toBe(0);
  });

  it("shows each character once, whole, on the token that ends it", () => {
    const run = new RunText();
    const shown = utf8("日🎉é").map((byte) => run.feed(new Uint8Array([byte])));
    expect(shown).toEqual(["", "", "日", "", "", "", "🎉", "", "é"]);
    expect(run.end()).toBe("");
  });

  it("shows bytes that never became a character as U+FFFD, once the run ends", () => {
    const pieces: Piece[] = [
      {kind: "token", token: token("\ufffd", {bytes: [0xe6]}), backtracked: false, text: "\ufffd"},
      {kind: "role_open", role: "user"},
      {kind: "text", text: "ok"},
    ];
    expect(texts(decodeRun(pieces, new RunText(), true))).toEqual(["\ufffd", "|", "ok"]);
  });

  it("decodes a forced regex split over byte tokens and batches", () => {
    const s = new Stream();
    s.textNode(1, null, "Say: ");
    s.generation(2, 1);
    const tokens = byteTokens("日本語 🎉 café");
    for (let i = 0; i < tokens.length; i += 3) s.tokens(2, tokens.slice(i, i + 3));
    expect(pathText(fold(s.messages))).toBe("Say: 日本語 🎉 café");
  });

  it("goes on from node to node: a character split over two generations is shown whole", () => {
    const s = new Stream();
    s.textNode(1, null, "x");
    s.node(2, 1, {entries: byteTokens("日").slice(0, 2)});
    s.node(3, 2, {entries: byteTokens("日").slice(2)});
    const parts = pathParts(fold(s.messages));
    expect(parts.map((part) => texts(part.pieces))).toEqual([["x"], ["", ""], ["日"]]);
  });

  it("joins what healing left of a character with the bytes that re-make it", () => {
    const s = new Stream();
    s.textNode(1, null, "café");
    // Healing takes back the last byte of é; the generation re-makes it, then goes on.
    s.node(2, 1, {entries: [token("\ufffd!", {bytes: [0xa9, 0x21]})], healed_bytes: 1});
    expect(pathText(fold(s.messages))).toBe("café!");
  });

  it("ends a run at a label: an unfinished character before it is U+FFFD", () => {
    const s = new Stream();
    s.node(1, null, {entries: byteTokens("日").slice(0, 2)});
    s.node(2, 1, {entries: [roleOpen("user")]});
    expect(pathText(fold(s.messages))).toBe("\ufffd<user>");
  });
});
