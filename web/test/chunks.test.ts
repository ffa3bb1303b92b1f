import {describe, expect, it} from "vitest";

import {SEAL_ALWAYS, SEAL_AT_LINE, SEAL_AT_WORD, estimatedLines, sealsAfter} from "../src/chunks";

describe("where a chunk ends", () => {
  it("ends at a line end once it holds enough items", () => {
    expect(sealsAfter(SEAL_AT_LINE - 1, "a↵\n")).toBe(false);
    expect(sealsAfter(SEAL_AT_LINE, "a↵\n")).toBe(true);
    expect(sealsAfter(SEAL_AT_LINE, "a ")).toBe(false);
    expect(sealsAfter(SEAL_AT_LINE, "")).toBe(false);
  });

  it("ends after a word when no line ends, and anywhere when no word does", () => {
    expect(sealsAfter(SEAL_AT_WORD - 1, "word ")).toBe(false);
    expect(sealsAfter(SEAL_AT_WORD, "word ")).toBe(true);
    expect(sealsAfter(SEAL_AT_WORD, "東京")).toBe(false);
    expect(sealsAfter(SEAL_ALWAYS - 1, "東京")).toBe(false);
    expect(sealsAfter(SEAL_ALWAYS, "東京")).toBe(true);
    expect(sealsAfter(SEAL_ALWAYS, "")).toBe(true);
  });

  it("keeps the line end rule below the word rule, below the hard one", () => {
    expect(SEAL_AT_LINE).toBeLessThan(SEAL_AT_WORD);
    expect(SEAL_AT_WORD).toBeLessThan(SEAL_ALWAYS);
  });
});

describe("a sealed chunk's size before it was shown", () => {
  it("counts line ends and long lines", () => {
    expect(estimatedLines(0, 0)).toBe(1);
    expect(estimatedLines(10, 0)).toBe(1);
    expect(estimatedLines(250, 0)).toBe(3);
    expect(estimatedLines(12, 4)).toBe(5);
  });
});
