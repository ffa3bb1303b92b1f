import {describe, expect, it} from "vitest";

import {bytes, count, latencyScale, percent, quoted, seconds, shownText, visibleText, visibleWhitespace} from "../src/format";
import {tokenLabel} from "../src/format";

describe("visibleWhitespace", () => {
  it("shows newlines (still breaking the line), tabs and carriage returns", () => {
    expect(visibleWhitespace("a\nb")).toBe("a↵\nb");
    expect(visibleWhitespace("a\tb")).toBe("a→b");
    expect(visibleWhitespace("a\r\nb")).toBe("a␍↵\nb");
    expect(visibleWhitespace("\n\n")).toBe("↵\n↵\n");
  });

  it("leaves spaces and other text alone", () => {
    expect(visibleWhitespace("a b  c")).toBe("a b  c");
    expect(visibleWhitespace("")).toBe("");
    expect(visibleWhitespace("café 日本")).toBe("café 日本");
  });
});

describe("shownText", () => {
  it("shows every character as visibleText and visibleWhitespace do, text with nothing to rewrite as it is", () => {
    // Every character of the Basic Multilingual Plane, inside other text.
    const differ: number[] = [];
    for (let code = 0; code <= 0xffff; code++) {
      const text = `a${String.fromCharCode(code)}b`;
      if (shownText(text) !== visibleWhitespace(visibleText(text))) differ.push(code);
    }
    expect(differ).toEqual([]);
    const hostile = "<|im_start|>user</s>\x1b[31m\u202e</script>\t東京🦀\r\n\u0085";
    expect(shownText(hostile)).toBe(visibleWhitespace(visibleText(hostile)));
    expect(shownText(hostile)).not.toMatch(/[\x1b\u202e\t\r\u0085]/);
    const plain = "Once upon a time 東京 🦀";
    expect(shownText(plain)).toBe(plain);
  });
});

describe("quoted", () => {
  it("quotes a token's text and shows every whitespace character, on one line", () => {
    expect(quoted("Paris")).toBe('"Paris"');
    expect(quoted(" the")).toBe('"·the"');
    expect(quoted("a\tb\r\n")).toBe('"a→b␍↵"');
    expect(quoted("  ")).toBe('"··"');
    expect(quoted("")).toBe('""');
    expect(quoted("x\ny")).not.toContain("\n");
  });
});

describe("seconds", () => {
  it("gives microseconds below a millisecond", () => {
    expect(seconds(0)).toBe("0 µs");
    expect(seconds(0.00025)).toBe("250 µs");
    expect(seconds(0.0000004)).toBe("0 µs");
  });

  it("gives milliseconds below a second, two decimals below 10 ms", () => {
    expect(seconds(0.001)).toBe("1.00 ms");
    expect(seconds(0.00512)).toBe("5.12 ms");
    expect(seconds(0.0123)).toBe("12.3 ms");
    expect(seconds(0.5)).toBe("500.0 ms");
  });

  it("gives seconds below two minutes", () => {
    expect(seconds(1)).toBe("1.00 s");
    expect(seconds(2.5)).toBe("2.50 s");
    expect(seconds(119.5)).toBe("119.50 s");
  });

  it("gives minutes and seconds from two minutes", () => {
    expect(seconds(120)).toBe("2 min 0 s");
    expect(seconds(150.2)).toBe("2 min 30 s");
    expect(seconds(3725)).toBe("62 min 5 s");
  });

  it("never writes 60 seconds: a value that rounds up to the next minute gives that minute", () => {
    expect(seconds(179.6)).toBe("3 min 0 s");
    expect(seconds(239.99)).toBe("4 min 0 s");
  });

  it("gives a dash for no value", () => {
    expect(seconds(null)).toBe("–");
    expect(seconds(undefined)).toBe("–");
    expect(seconds(Number.NaN)).toBe("–");
  });
});

describe("bytes", () => {
  it("gives whole bytes below a KiB", () => {
    expect(bytes(0)).toBe("0 B");
    expect(bytes(1023)).toBe("1023 B");
  });

  it("gives binary units with one decimal", () => {
    expect(bytes(1024)).toBe("1.0 KiB");
    expect(bytes(1536)).toBe("1.5 KiB");
    expect(bytes(512 * 1024 ** 2)).toBe("512.0 MiB");
    expect(bytes(16 * 1024 ** 3)).toBe("16.0 GiB");
    expect(bytes(3 * 1024 ** 4)).toBe("3.0 TiB");
  });

  it("stops at TiB", () => {
    expect(bytes(2 * 1024 ** 5)).toBe("2048.0 TiB");
  });

  it("gives a dash for no value", () => {
    expect(bytes(null)).toBe("–");
    expect(bytes(undefined)).toBe("–");
  });
});

describe("percent", () => {
  it("writes a share as a percentage, one decimal by default", () => {
    expect(percent(0.25)).toBe("25.0%");
    expect(percent(0.1234)).toBe("12.3%");
    expect(percent(1)).toBe("100.0%");
    expect(percent(0)).toBe("0.0%");
    expect(percent(0.256, 0)).toBe("26%");
    expect(percent(0.12345, 2)).toBe("12.35%");
  });

  it("gives a dash for no value", () => {
    expect(percent(null)).toBe("–");
    expect(percent(undefined)).toBe("–");
    expect(percent(Number.NaN)).toBe("–");
  });
});

describe("count", () => {
  it("groups thousands", () => {
    expect(count(0)).toBe("0");
    expect(count(999)).toBe("999");
    expect(count(1234)).toBe("1,234");
    expect(count(1234567)).toBe("1,234,567");
    expect(count(-1234)).toBe("-1,234");
    expect(count(1234.5)).toBe("1,234.5");
    expect(count(123456789012)).toBe("123,456,789,012");
  });
});

describe("latencyScale", () => {
  it("is 0 at and below 1 ms, and for no latency", () => {
    expect(latencyScale(0.001)).toBe(0);
    expect(latencyScale(0.0001)).toBe(0);
    expect(latencyScale(0)).toBe(0);
    expect(latencyScale(-1)).toBe(0);
    expect(latencyScale(Number.NaN)).toBe(0);
  });

  it("is 1 at and above 1 s", () => {
    expect(latencyScale(1)).toBe(1);
    expect(latencyScale(30)).toBe(1);
    expect(latencyScale(Number.POSITIVE_INFINITY)).toBe(1);
  });

  it("is logarithmic in between", () => {
    expect(latencyScale(0.01)).toBeCloseTo(1 / 3, 10);
    expect(latencyScale(0.1)).toBeCloseTo(2 / 3, 10);
    expect(latencyScale(10 ** -1.5)).toBeCloseTo(0.5, 10);
  });

  it("grows with the latency", () => {
    const values = [0.0005, 0.001, 0.002, 0.01, 0.05, 0.2, 0.9, 1, 5].map(latencyScale);
    for (let i = 1; i < values.length; i++) expect(values[i]).toBeGreaterThanOrEqual(values[i - 1]);
    expect(values[2]).toBeGreaterThan(0);
    expect(values[6]).toBeLessThan(1);
  });
});

describe("unit boundaries after rounding", () => {
  it("never prints a figure that belongs to the next unit", () => {
    expect(seconds(0.00099999)).toBe("1.00 ms");
    expect(seconds(0.99996)).toBe("1.00 s");
    expect(seconds(119.999)).toBe("2 min 0 s");
    expect(bytes(1048575)).toBe("1.0 MiB");
    expect(bytes(1023)).toBe("1023 B");
  });
});

describe("tokenLabel", () => {
  it("quotes valid text and spells out bytes that are not UTF-8 on their own", () => {
    expect(tokenLabel(" a\n", null)).toBe('"·a↵"');
    expect(tokenLabel("\ufffd", btoa("\xdf\x84"))).toBe('b"\\xdf\\x84"');
  });
});
