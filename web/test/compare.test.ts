import {describe, expect, it} from "vitest";

import {MAX_CELLS, capturesOf, comparableTexts, differences, differingCaptures} from "../src/compare";
import type {ServerMessage} from "../src/messages";
import type {RunState} from "../src/state";
import {applyMessages, createRunState} from "../src/state";
import {streams} from "./streams";

function fold(messages: ServerMessage[]): RunState {
  const state = createRunState();
  applyMessages(state, messages);
  return state;
}

const split = (text: string) => [...text];

describe("differences", () => {
  it("marks nothing in equal runs", () => {
    const same = split("the same <script> 日本 🦀");
    expect(differences(same, [...same])).toEqual({left: same.map(() => false), right: same.map(() => false)});
  });

  it("marks what one run has and the other has not, keeping the common subsequence", () => {
    const found = differences(split("abXcdY"), split("aZbcd"));
    expect(found.left).toEqual([false, false, true, false, false, true]);
    expect(found.right).toEqual([false, true, false, false, false]);
  });

  it("handles one empty side and wholly different sides", () => {
    expect(differences([], split("ab"))).toEqual({left: [], right: [true, true]});
    expect(differences(split("ab"), split("cd"))).toEqual({left: [true, true], right: [true, true]});
  });

  it("marks the whole middle of runs too long to match, but still their shared ends", () => {
    const size = Math.ceil(Math.sqrt(MAX_CELLS)) + 1;
    const left = ["start", ...Array.from({length: size}, (_, i) => `l${i}`), "end"];
    const right = ["start", ...Array.from({length: size}, (_, i) => `l${i + 1}`), "end"];
    const found = differences(left, right);
    expect(found.left[0]).toBe(false);
    expect(found.left[left.length - 1]).toBe(false);
    expect(found.left.slice(1, -1).every(Boolean)).toBe(true);
  });
});

describe("comparing recorded runs", () => {
  it("takes one text per rendered text or token piece, in path order", () => {
    const recorded = streams.chat;
    const state = fold(recorded.messages);
    const texts = comparableTexts(state);
    expect(texts.join("")).toBe(recorded.text.replace(/<\/?[a-z]+>/g, ""));
  });

  it("finds the captures that differ", () => {
    const chat = fold(streams.chat.messages);
    const utf8 = fold(streams.utf8.messages);
    expect(differingCaptures(chat, chat).size).toBe(0);
    const names = new Set([...capturesOf(chat).keys(), ...capturesOf(utf8).keys()]);
    const differing = differingCaptures(chat, utf8);
    for (const name of names) {
      expect(differing.has(name)).toBe(capturesOf(chat).get(name) !== capturesOf(utf8).get(name));
    }
  });
});
