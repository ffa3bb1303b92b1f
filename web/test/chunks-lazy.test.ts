// @vitest-environment happy-dom
// Chunks away from the screen hold their tokens as text until the browser says they near it
// (chunks.ts): not built until needed, then built to the same DOM as a chunk built at once.
import {describe, expect, it, vi} from "vitest";

import type {TextItem} from "../src/chunks";
import {ChunkedText, SEAL_AT_LINE, VISIBILITY_EVENT} from "../src/chunks";

/** Items with a count of the elements made, each made once. */
class Items {
  made = 0;

  token(text: string): TextItem {
    let element: HTMLElement | null = null;
    return {
      text,
      lazy: true,
      element: () => {
        if (element === null) {
          this.made += 1;
          element = document.createElement("span");
          element.className = "rd-token";
          element.textContent = text;
        }
        return element;
      },
    };
  }

  label(role: string): TextItem {
    let element: HTMLElement | null = null;
    return {
      text: "",
      lazy: false,
      element: () => {
        if (element === null) {
          this.made += 1;
          element = document.createElement("span");
          element.className = "rd-role";
          element.textContent = role;
        }
        return element;
      },
    };
  }
}

/** Hostile and non-ASCII text, a line end every `SEAL_AT_LINE` items: many chunks. */
function story(items: Items, lines: number): TextItem[] {
  const words = ["<b>bold</b>", "</script>", "\\x1b[31m", "東", "京", "🦀", "<|im_start|>", "</s>", "&amp;"];
  const out: TextItem[] = [];
  for (let line = 0; line < lines; line++) {
    for (let n = 0; n < SEAL_AT_LINE - 1; n++) out.push(items.token(words[(line + n) % words.length]));
    out.push(items.token("↵\n"));
  }
  return out;
}

function chunksOf(container: HTMLElement): HTMLElement[] {
  return [...container.children] as HTMLElement[];
}

/** The browser says `chunk` is near the screen (or not), and the next frame comes. */
async function shownNear(chunk: HTMLElement, near = true): Promise<void> {
  said(chunk, near);
  await nextFrame();
}

function said(chunk: HTMLElement, near: boolean): void {
  const event = new Event(VISIBILITY_EVENT);
  Object.defineProperty(event, "skipped", {value: !near});
  chunk.dispatchEvent(event);
}

function nextFrame(): Promise<void> {
  return new Promise((resolve) => requestAnimationFrame(() => resolve()));
}

/** The same items shown by chunks built at once, and by lazy chunks. */
function both(make: (items: Items) => TextItem[], nodeId = 1) {
  const eager = {container: document.createElement("div"), items: new Items()};
  const lazy = {container: document.createElement("div"), items: new Items()};
  const eagerText = new ChunkedText(eager.container, false);
  const lazyText = new ChunkedText(lazy.container, true);
  const eagerItems = make(eager.items);
  const lazyItems = make(lazy.items);
  eagerText.append(nodeId, eagerItems);
  lazyText.append(nodeId, lazyItems);
  return {eager, lazy, eagerText, lazyText, eagerItems, lazyItems};
}

describe("a chunk away from the screen", () => {
  it("is not built until the browser says it is near, and holds its text as text", () => {
    const {lazy, lazyText, lazyItems} = both((items) => story(items, 60));
    const {built, lazy: waiting} = lazyText.chunkCounts();
    expect(built).toBeGreaterThan(0);
    expect(waiting).toBeGreaterThan(built);
    const chunks = chunksOf(lazy.container);
    // The chunks at the text's start are built at once; the others hold text alone.
    expect(chunks[0].classList.contains("rd-lazy")).toBe(false);
    const last = chunks[chunks.length - 1];
    expect(last.classList.contains("rd-lazy")).toBe(true);
    expect(last.querySelector(".rd-token")).toBeNull();
    expect(last.querySelector(".rd-node")?.childNodes.length).toBe(1);
    expect(Number(last.dataset.unbuilt)).toBe(SEAL_AT_LINE);
    // Every token's text is in the page, as text: markup stays text.
    expect(lazy.container.textContent).toBe(lazyItems.map((item) => item.text).join(""));
    expect(lazy.container.querySelector("b, script")).toBeNull();
    // Only the built chunks' tokens have elements.
    expect(lazy.items.made).toBe(built * SEAL_AT_LINE);
    const unbuilt = chunks.reduce((sum, chunk) => sum + Number(chunk.dataset.unbuilt ?? 0), 0);
    expect(unbuilt + lazy.container.querySelectorAll(".rd-token").length).toBe(lazyItems.length);
  });

  it("is built to the same DOM as a chunk built at once, each element made once", async () => {
    const {eager, lazy, eagerItems} = both((items) => story(items, 60));
    const skipped = chunksOf(lazy.container).filter((chunk) => chunk.classList.contains("rd-lazy"));
    await shownNear(skipped[0], false);
    expect(skipped[0].classList.contains("rd-lazy")).toBe(true);
    for (const chunk of skipped) await shownNear(chunk);
    expect(lazy.container.innerHTML).toBe(eager.container.innerHTML);
    expect(lazy.items.made).toBe(eagerItems.length);
    // Said again: nothing is made again.
    await shownNear(skipped[1]);
    expect(lazy.items.made).toBe(eagerItems.length);
  });

  it("keeps labels as elements among its text, and builds around them", () => {
    const {eager, lazy, lazyText} = both((items) => {
      const out = story(items, 40);
      out.push(items.label("user"), ...story(items, 2), items.label("assistant"));
      return out;
    });
    const labels = lazy.container.querySelectorAll(".rd-lazy .rd-role");
    expect([...labels].map((label) => label.textContent)).toEqual(["user", "assistant"]);
    expect(lazy.container.textContent).toBe(eager.container.textContent);
    lazyText.buildAll();
    expect(lazy.container.innerHTML).toBe(eager.container.innerHTML);
  });

  it("is built when a tool asks for one of its items", () => {
    const {lazy, lazyText, lazyItems} = both((items) => story(items, 60));
    const index = lazyItems.length - 3;
    const element = lazyText.itemAt(index);
    expect(element?.textContent).toBe(lazyItems[index].text);
    expect(lazy.container.contains(element as HTMLElement)).toBe(true);
    expect(chunksOf(lazy.container).at(-1)?.classList.contains("rd-lazy")).toBe(false);
  });

  it("gives back the text that is left when items are taken off, built or not", () => {
    const {eager, lazy, eagerText, lazyText, lazyItems} = both((items) => story(items, 60));
    const cut = lazyItems.length - SEAL_AT_LINE - 10;
    eagerText.truncate(cut);
    lazyText.truncate(cut);
    expect(lazy.container.textContent).toBe(eager.container.textContent);
    expect(lazy.container.textContent).toBe(
      lazyItems
        .slice(0, cut)
        .map((item) => item.text)
        .join(""),
    );
    const last = chunksOf(lazy.container).at(-1) as HTMLElement;
    expect(Number(last.dataset.unbuilt)).toBe(SEAL_AT_LINE - 10);
    lazyText.buildAll();
    expect(lazy.container.innerHTML).toBe(eager.container.innerHTML);
  });

  it("streams on into a built chunk after a chunk the browser says is near", async () => {
    const items = new Items();
    const container = document.createElement("div");
    const text = new ChunkedText(container, true);
    const first = story(items, 60);
    text.append(1, first);
    const chunks = chunksOf(container);
    // The last chunk comes near (the end of the run is on screen).
    await shownNear(chunks[chunks.length - 1]);
    text.append(1, story(items, 3));
    const after = chunksOf(container).slice(chunks.length - 1);
    expect(after.length).toBeGreaterThan(2);
    expect(after.every((chunk) => !chunk.classList.contains("rd-lazy"))).toBe(true);
    // Once it is away again, what streams next waits.
    await shownNear(chunksOf(container).at(-1) as HTMLElement, false);
    text.append(1, story(items, 3));
    expect(chunksOf(container).at(-1)?.classList.contains("rd-lazy")).toBe(true);
  });
});

describe("a selection in a chunk being built", () => {
  /** A long story in lazy chunks, in the page. */
  const inPage = (): HTMLElement => {
    const container = document.createElement("div");
    document.body.append(container);
    new ChunkedText(container, true).append(1, story(new Items(), 60));
    return container;
  };

  it("ends at the same characters after", async () => {
    const container = inPage();
    const last = chunksOf(container).at(-1) as HTMLElement;
    const node = last.querySelector(".rd-node")?.firstChild as Text;
    expect(node.nodeType).toBe(Node.TEXT_NODE);
    // A find's selection of "</script>" in the chunk's text.
    const at = node.data.indexOf("</script>");
    getSelection()?.setBaseAndExtent(node, at, node, at + "</script>".length);
    await shownNear(last);
    expect(last.querySelector(".rd-token")).not.toBeNull();
    expect(getSelection()?.toString()).toBe("</script>");
    expect(getSelection()?.anchorNode?.parentElement?.classList.contains("rd-token")).toBe(true);
    container.remove();
  });

  it("from one chunk to another, both said near for the same frame, is asked for once and kept", async () => {
    const container = inPage();
    const [before, last] = chunksOf(container).slice(-2);
    const from = before.querySelector(".rd-node")?.firstChild as Text;
    const to = last.querySelector(".rd-node")?.firstChild as Text;
    const start = from.data.lastIndexOf("東京");
    const end = to.data.indexOf("</script>") + "</script>".length;
    getSelection()?.setBaseAndExtent(from, start, to, end);
    const selected = getSelection()?.toString();
    expect(selected).toContain("東京");
    const asked = vi.spyOn(window, "getSelection");
    said(before, true);
    said(last, true);
    expect(before.querySelector(".rd-token")).toBeNull(); // built at the next frame
    await nextFrame();
    expect(asked).toHaveBeenCalledTimes(1);
    asked.mockRestore();
    expect(before.querySelector(".rd-token")).not.toBeNull();
    expect(last.querySelector(".rd-token")).not.toBeNull();
    expect(getSelection()?.toString()).toBe(selected);
    container.remove();
  });
});

describe("chunks presumed near", () => {
  it("reach no further past the last one the browser said is near than chunks built from the start", async () => {
    const items = new Items();
    const container = document.createElement("div");
    const text = new ChunkedText(container, true);
    text.append(1, story(items, 60));
    const eager = text.chunkCounts().built;
    await shownNear(chunksOf(container).at(-1) as HTMLElement);
    // One frame seals many chunks after it: about as many as are built from the start are.
    text.append(1, story(items, 200));
    const after = chunksOf(container).slice(60);
    const built = after.filter((chunk) => !chunk.classList.contains("rd-lazy")).length;
    expect(built).toBeGreaterThan(0);
    expect(Math.abs(built - eager)).toBeLessThanOrEqual(1);
    expect(after.at(-1)?.classList.contains("rd-lazy")).toBe(true);
  });
});
