// The run's text as a list of chunks, each laid out once, whose token spans are built when
// they first near the screen: the browser's cost of showing a run is bounded by what is on
// screen, not by the run's length.
//
// The text is a flat list of items (the elements of tokens, fixed text, role labels and
// placeholders), in order. Items go into the open chunk at the end; a chunk is sealed after
// an item that ends a line once it holds `SEAL_AT_LINE` items (or after a word at
// `SEAL_AT_WORD`, or anywhere at `SEAL_ALWAYS`, for text without line ends), and is not
// touched again unless items are taken off its end (backtracking, healing, a branch
// switched). A sealed chunk is an inline-block as wide as the text, its own formatting
// context, with `content-visibility: auto`: off screen, the browser skips its style, layout
// and paint. An inline-block, not a block, so that copying a selection and `innerText`
// give the text alone (a block boundary would add a line break), and the browser's find
// still sees the text of every chunk (windowing would not). Where a chunk ends is a
// function of the items alone, so a run streamed and the same run inlined get the same
// chunks.
//
// A chunk away from the screen is lazy: its tokens' spans are not built, each run of them
// is one text node holding their text, so the page holds every character (the browser's
// find, a selection, copying) at the cost of a text node, not thousands of spans. A lazy
// chunk has `content-visibility: auto` too, and is built once, its text nodes replaced by
// the spans, at the frame after the browser says it is near the screen
// (`contentvisibilityautostatechange`, fired some way before it shows): the same elements, in the same order, as a chunk built
// from the start, and a selection that ends in it (the user's, a find's) ends at the same
// characters after. Chunks that start within a screen's height (estimated, `EAGER_SCREENS`)
// of the text's start are built at once, so a first frame shows coloured tokens; so is a chunk that follows one
// near the screen (the end of a run streaming in view), presumed near itself until the
// browser says, but no further from the last one the browser said is near than the chunks
// built from the start reach. A built chunk stays built.
//
// Within a chunk each node's items sit in a `span.rd-node[data-node]`, so a token's node is
// `closest("[data-node]")` wherever its chunk ends.

import {element} from "./dom";

/** A chunk that holds this many items is sealed after the next item that ends a line. */
export const SEAL_AT_LINE = 96;
/** ... after the next one that ends a word, when no line ended. */
export const SEAL_AT_WORD = 384;
/** ... after any item, when no word ended either (a long run of text without spaces). */
export const SEAL_ALWAYS = 768;
/** Chunks that start within this many screen heights (estimated) of the text's start are
 * built at once: what a view opened at its top shows. One is enough: the estimate counts the
 * lines a chunk takes at least (the characters a line holds are measured), so a chunk that
 * starts on screen is estimated to start no lower; and no more, so that the first frame
 * builds, styles and paints the screen's tokens and a chunk's worth after them. */
export const EAGER_SCREENS = 1;
/** The estimated size of a sealed chunk never shown: characters per line (where the text's
 * lines cannot be measured), line height. */
export const CHARS_PER_LINE = 100;
const LINE_PX = 21;
/** The event by which the browser says a `content-visibility: auto` element is skipped or
 * not (Chromium 108, Firefox 125, Safari 18); where it is missing, every chunk is built. */
export const VISIBILITY_EVENT = "contentvisibilityautostatechange";

/** How far from the text's start chunks are built at once, in pixels. */
function eagerPx(): number {
  return EAGER_SCREENS * (globalThis.screen?.height || 800);
}

/** Whether a chunk of `items` items whose last item shows `text` is sealed. */
export function sealsAfter(items: number, text: string): boolean {
  if (items >= SEAL_ALWAYS) return true;
  if (items >= SEAL_AT_WORD && /\s$/.test(text)) return true;
  return items >= SEAL_AT_LINE && text.endsWith("\n");
}

/** Lines that `chars` characters with `newlines` line ends take at least, for a chunk's
 * intrinsic size before it was ever shown (after that the browser remembers its size). */
export function estimatedLines(chars: number, newlines: number, charsPerLine: number = CHARS_PER_LINE): number {
  return Math.max(1, newlines + Math.ceil((chars - newlines) / charsPerLine));
}

/** How many characters a line of `container`'s text holds, from the width of a probe of its
 * font (null where nothing is laid out: a container not in a page, or hidden). It forces a
 * layout: measured once, before the text holds anything. */
export function measuredCharsPerLine(container: HTMLElement): number | null {
  const probe = element("span", "", "0".repeat(PROBE_CHARS));
  container.append(probe);
  const charPx = probe.getBoundingClientRect().width / PROBE_CHARS;
  probe.remove();
  const style = getComputedStyle(container);
  const linePx = container.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  if (!(charPx > 0 && linePx > 0)) return null;
  return Math.max(1, Math.floor(linePx / charPx));
}

const PROBE_CHARS = 50;

/** One item of the text: what it shows, and its element, made on the first call and the
 * same element on every later one. */
export interface TextItem {
  readonly text: string;
  /** Whether a lazy chunk holds it as text alone until built (a token: its span is the
   * cost); other items (fixed text, role labels, placeholders) are elements at once. */
  readonly lazy: boolean;
  element(): HTMLElement;
}

/** Whether chunks may wait to be built: the browser tells when one nears the screen. */
export function browserTellsVisibility(): boolean {
  return typeof document !== "undefined" && `on${VISIBILITY_EVENT}` in document.documentElement;
}

interface Chunk {
  element: HTMLElement;
  items: number;
  chars: number;
  newlines: number;
  sealed: boolean;
  /** Whether its items are all elements (else runs of lazy items are text nodes). */
  built: boolean;
  /** Whether it is near the screen, as the browser last said (or, unsaid, as presumed). */
  near: boolean;
  /** Where it starts, estimated, in pixels from the text's start. */
  topPx: number;
  /** Where the last chunk the browser said is near starts, when `near` is presumed from it. */
  nearTopPx: number;
  /** Its estimated height when it was sealed, in pixels. */
  sealedPx: number;
  /** Its lazy items held as text, in `data-unbuilt` too (what the page holds, for tools). */
  unbuilt: number;
}

interface Item {
  item: TextItem;
  chunk: Chunk;
  /** The `span.rd-node` that holds it. */
  holder: HTMLElement;
}

export class ChunkedText {
  private readonly chunks: Chunk[] = [];
  private readonly items: Item[] = [];
  /** Each node's holders, for marking a failed node. */
  private readonly holders = new Map<number, Set<HTMLElement>>();
  private readonly failed = new Set<number>();
  private readonly byElement = new WeakMap<Element, Chunk>();
  /** The estimated height of the sealed chunks, in pixels: where the next chunk starts. */
  private sealedPx = 0;
  /** Characters per line of the text, measured when the first chunk is made. */
  private charsPerLine: number | null = null;
  /** Chunks the browser said are near, built at the next frame (`buildSoon`). */
  private readonly nearChunks = new Set<Chunk>();
  private frame = 0;

  /** `lazy`: whether chunks away from the screen wait to be built (by default, where the
   * browser tells when they near it). */
  constructor(
    private readonly container: HTMLElement,
    private readonly lazy: boolean = browserTellsVisibility(),
  ) {
    if (lazy) {
      // The event does not bubble: caught on its way down.
      container.addEventListener(VISIBILITY_EVENT, (event) => this.visibilityChanged(event), {capture: true});
    }
  }

  get length(): number {
    return this.items.length;
  }

  /** The item at `index`'s element, its chunk built first (for tests and tools). */
  itemAt(index: number): HTMLElement | undefined {
    const item = this.items[index];
    if (item === undefined) return undefined;
    this.build(item.chunk);
    return item.item.element();
  }

  /** How many chunks are built, and how many wait (for tests and tools). */
  chunkCounts(): {built: number; lazy: number} {
    const built = this.chunks.filter((chunk) => chunk.built).length;
    return {built, lazy: this.chunks.length - built};
  }

  /** Build every chunk (for tools that need each token's element). */
  buildAll(): void {
    for (const chunk of this.chunks) this.build(chunk);
  }

  /** Take every item from `index` on off the end; their chunks open again. */
  truncate(index: number): void {
    const lazyTouched = new Set<Chunk>();
    while (this.items.length > index) {
      const {item, chunk, holder} = this.items.pop() as Item;
      if (chunk.built) item.element().remove();
      else lazyTouched.add(chunk);
      chunk.items -= 1;
      chunk.chars -= item.text.length;
      chunk.newlines -= countNewlines(item.text);
      if (chunk.sealed) this.unseal(chunk);
      // Holders are runs of items: one holds no more once the last item left is another's.
      if (this.items[this.items.length - 1]?.holder !== holder) this.dropHolder(holder);
      if (chunk.items === 0) {
        chunk.element.remove();
        this.chunks.pop();
        lazyTouched.delete(chunk);
      }
    }
    // A lazy chunk's text is written again from the items it keeps.
    for (const chunk of lazyTouched) this.writeLazy(chunk);
  }

  /** Add `items` of node `nodeId` at the end. */
  append(nodeId: number, items: readonly TextItem[]): void {
    let chunk = this.openChunk();
    let holder = this.holderIn(chunk, nodeId);
    // Items are gathered per holder and added at once (one DOM write per holder).
    let batch: TextItem[] = [];
    const flush = () => {
      if (batch.length) this.addTo(chunk, holder, batch);
      batch = [];
    };
    items.forEach((item, index) => {
      batch.push(item);
      this.items.push({item, chunk, holder});
      chunk.items += 1;
      chunk.chars += item.text.length;
      chunk.newlines += countNewlines(item.text);
      if (sealsAfter(chunk.items, item.text)) {
        flush();
        this.seal(chunk);
        if (index < items.length - 1) {
          chunk = this.openChunk();
          holder = this.holderIn(chunk, nodeId);
        }
      }
    });
    flush();
    if (!chunk.built) this.estimateSize(chunk);
  }

  /** Mark node `nodeId`'s text as failed (or not). */
  setFailed(nodeId: number, failed: boolean): void {
    if (failed) this.failed.add(nodeId);
    else this.failed.delete(nodeId);
    for (const holder of this.holders.get(nodeId) ?? []) holder.classList.toggle("rd-error", failed);
  }

  private openChunk(): Chunk {
    const last = this.chunks[this.chunks.length - 1];
    if (last !== undefined && !last.sealed) return last;
    this.charsPerLine ??= measuredCharsPerLine(this.container) ?? CHARS_PER_LINE;
    // Built at once near the text's start, or after a chunk near the screen: presumed near
    // itself until the browser says, up to as far from the last one it said is near as
    // chunks are built from the start (a frame that seals many chunks builds no more).
    const nearTopPx = last?.nearTopPx ?? 0;
    const near = (last?.near ?? false) && this.sealedPx - nearTopPx < eagerPx();
    const built = !this.lazy || this.sealedPx < eagerPx() || near;
    const chunk: Chunk = {
      element: element("span", built ? "rd-chunk" : "rd-chunk rd-lazy"),
      items: 0,
      chars: 0,
      newlines: 0,
      sealed: false,
      built,
      near,
      topPx: this.sealedPx,
      nearTopPx,
      sealedPx: 0,
      unbuilt: 0,
    };
    this.byElement.set(chunk.element, chunk);
    this.container.append(chunk.element);
    this.chunks.push(chunk);
    return chunk;
  }

  private holderIn(chunk: Chunk, nodeId: number): HTMLElement {
    const last = chunk.element.lastElementChild as HTMLElement | null;
    if (last !== null && last.dataset.node === String(nodeId)) return last;
    const holder = element("span", "rd-node");
    holder.dataset.node = String(nodeId);
    if (this.failed.has(nodeId)) holder.classList.add("rd-error");
    chunk.element.append(holder);
    let holders = this.holders.get(nodeId);
    if (holders === undefined) this.holders.set(nodeId, (holders = new Set()));
    holders.add(holder);
    return holder;
  }

  private dropHolder(holder: HTMLElement): void {
    holder.remove();
    const nodeId = Number(holder.dataset.node);
    const holders = this.holders.get(nodeId);
    holders?.delete(holder);
    if (holders?.size === 0) this.holders.delete(nodeId);
  }

  /** Add `items` at the end of `holder` in `chunk`: elements in a built chunk; in a lazy
   * one, runs of lazy items as text (going on from a text node the holder ends with). */
  private addTo(chunk: Chunk, holder: HTMLElement, items: readonly TextItem[]): void {
    if (chunk.built) {
      holder.append(...items.map((item) => item.element()));
      return;
    }
    const nodes: (Node | string)[] = [];
    let text = "";
    for (const item of items) {
      if (item.lazy) {
        text += item.text;
        chunk.unbuilt += 1;
        continue;
      }
      if (text) nodes.push(text);
      text = "";
      nodes.push(item.element());
    }
    if (text) nodes.push(text);
    chunk.element.dataset.unbuilt = String(chunk.unbuilt);
    const last = holder.lastChild;
    if (typeof nodes[0] === "string" && last !== null && last.nodeType === Node.TEXT_NODE) {
      (last as Text).appendData(nodes.shift() as string);
    }
    holder.append(...nodes);
  }

  /** Write a lazy chunk's holders again from its items (after some were taken off). */
  private writeLazy(chunk: Chunk): void {
    chunk.unbuilt = 0;
    chunk.element.dataset.unbuilt = "0";
    for (const [holder, items] of this.itemsByHolder(chunk)) {
      holder.replaceChildren();
      this.addTo(chunk, holder, items);
    }
    this.estimateSize(chunk);
  }

  /** Build a lazy chunk (see `buildEach`). */
  private build(chunk: Chunk): void {
    this.buildEach([chunk]);
  }

  /** Replace lazy chunks' text by their items' elements; a selection that ends in one (the
   * user's, or a find's) ends at the same characters after. */
  private buildEach(chunks: readonly Chunk[]): void {
    const lazy = chunks.filter((chunk) => !chunk.built);
    if (lazy.length === 0) return;
    const selection = keptSelection(lazy.map((chunk) => chunk.element));
    for (const chunk of lazy) this.fill(chunk);
    selection?.();
  }

  private fill(chunk: Chunk): void {
    chunk.built = true;
    for (const [holder, items] of this.itemsByHolder(chunk)) {
      holder.replaceChildren(...items.map((item) => item.element()));
    }
    chunk.unbuilt = 0;
    chunk.element.classList.remove("rd-lazy");
    delete chunk.element.dataset.unbuilt;
    if (!chunk.sealed) chunk.element.style.removeProperty("contain-intrinsic-size");
  }

  /** The chunk's items, per holder, in order. */
  private itemsByHolder(chunk: Chunk): Map<HTMLElement, TextItem[]> {
    const byHolder = new Map<HTMLElement, TextItem[]>();
    // Chunks are consecutive runs of items: a chunk's are found from the end.
    let index = this.items.length - 1;
    for (let later = this.chunks.length - 1; later >= 0 && this.chunks[later] !== chunk; later--) {
      index -= this.chunks[later].items;
    }
    const first = index - chunk.items + 1;
    for (let at = first; at <= index; at++) {
      const {holder, item} = this.items[at];
      let list = byHolder.get(holder);
      if (list === undefined) byHolder.set(holder, (list = []));
      list.push(item);
    }
    return byHolder;
  }

  private visibilityChanged(event: Event): void {
    const chunk = this.byElement.get(event.target as Element);
    if (chunk === undefined) return;
    chunk.near = !(event as Event & {skipped: boolean}).skipped;
    chunk.nearTopPx = chunk.topPx;
    if (chunk.near) this.buildSoon(chunk);
    // The open chunk after it is where a run streaming in view goes on: presumed as near.
    const open = this.chunks[this.chunks.length - 1];
    if (!open.sealed && this.chunks[this.chunks.length - 2] === chunk) {
      open.near = chunk.near;
      open.nearTopPx = chunk.topPx;
      if (open.near) this.buildSoon(open);
    }
  }

  /** Build `chunk` before the next frame, with every other chunk said to be near since the
   * last: the browser says so for each in a task of its own, and asking for the selection
   * (`keptSelection`) forces a style and layout when the page changed since the last one,
   * so the chunks of a frame are built at once, asking once, before anything changed. */
  private buildSoon(chunk: Chunk): void {
    this.nearChunks.add(chunk);
    if (this.frame !== 0) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      // A chunk taken off since (items truncated) is built no more.
      const chunks = [...this.nearChunks].filter((near) => this.chunks.includes(near));
      this.nearChunks.clear();
      this.buildEach(chunks);
    });
  }

  private seal(chunk: Chunk): void {
    chunk.sealed = true;
    chunk.sealedPx = this.estimatedPx(chunk);
    this.sealedPx += chunk.sealedPx;
    this.estimateSize(chunk);
    chunk.element.classList.add("rd-sealed");
  }

  private unseal(chunk: Chunk): void {
    chunk.sealed = false;
    this.sealedPx -= chunk.sealedPx;
    chunk.element.classList.remove("rd-sealed");
    if (chunk.built) chunk.element.style.removeProperty("contain-intrinsic-size");
  }

  private estimatedPx(chunk: Chunk): number {
    return estimatedLines(chunk.chars, chunk.newlines, this.charsPerLine ?? CHARS_PER_LINE) * LINE_PX;
  }

  /** The size a chunk takes while skipped and never shown (then the browser remembers). */
  private estimateSize(chunk: Chunk): void {
    chunk.element.style.setProperty("contain-intrinsic-size", `auto none auto ${this.estimatedPx(chunk)}px`);
  }
}

function countNewlines(text: string): number {
  let count = 0;
  for (let at = text.indexOf("\n"); at !== -1; at = text.indexOf("\n", at + 1)) count++;
  return count;
}

/** The selection's ends that lie in one of `roots`, as characters into its text: a
 * function that sets the selection again at the same characters once the roots' nodes
 * changed (null when no selection ends in them). */
function keptSelection(roots: readonly HTMLElement[]): (() => void) | null {
  const selection = typeof getSelection === "function" ? getSelection() : null;
  if (selection === null || selection.rangeCount === 0) return null;
  const {anchorNode, anchorOffset, focusNode, focusOffset} = selection;
  if (anchorNode === null || focusNode === null) return null;
  const anchorRoot = roots.find((root) => root.contains(anchorNode));
  const focusRoot = roots.find((root) => root.contains(focusNode));
  if (anchorRoot === undefined && focusRoot === undefined) return null;
  const anchorAt = anchorRoot === undefined ? 0 : charactersBefore(anchorRoot, anchorNode, anchorOffset);
  const focusAt = focusRoot === undefined ? 0 : charactersBefore(focusRoot, focusNode, focusOffset);
  return () => {
    const [anchor, anchorInNode] = anchorRoot === undefined ? [anchorNode, anchorOffset] : pointAt(anchorRoot, anchorAt);
    const [focus, focusInNode] = focusRoot === undefined ? [focusNode, focusOffset] : pointAt(focusRoot, focusAt);
    selection.setBaseAndExtent(anchor, anchorInNode, focus, focusInNode);
  };
}

function charactersBefore(root: Node, node: Node, offset: number): number {
  const range = document.createRange();
  range.setStart(root, 0);
  range.setEnd(node, offset);
  return range.toString().length;
}

/** The text node and offset `at` characters into `root`'s text. */
function pointAt(root: Node, at: number): [Node, number] {
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  let left = at;
  for (let node = walker.nextNode(); node !== null; node = walker.nextNode()) {
    const length = (node as Text).length;
    if (left <= length) return [node, left];
    left -= length;
  }
  return [root, root.childNodes.length];
}
