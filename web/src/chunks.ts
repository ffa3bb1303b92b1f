// The run's text as a list of chunks, each laid out once: the browser's cost of showing a
// run is bounded by what is on screen, not by the run's length.
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
// Within a chunk each node's items sit in a `span.rd-node[data-node]`, so a token's node is
// `closest("[data-node]")` wherever its chunk ends.

import {element} from "./dom";

/** A chunk that holds this many items is sealed after the next item that ends a line. */
export const SEAL_AT_LINE = 96;
/** ... after the next one that ends a word, when no line ended. */
export const SEAL_AT_WORD = 384;
/** ... after any item, when no word ended either (a long run of text without spaces). */
export const SEAL_ALWAYS = 768;
/** The estimated size of a sealed chunk never shown: characters per line, line height. */
const CHARS_PER_LINE = 100;
const LINE_PX = 21;

/** Whether a chunk of `items` items whose last item shows `text` is sealed. */
export function sealsAfter(items: number, text: string): boolean {
  if (items >= SEAL_ALWAYS) return true;
  if (items >= SEAL_AT_WORD && /\s$/.test(text)) return true;
  return items >= SEAL_AT_LINE && text.endsWith("\n");
}

/** Lines that `chars` characters with `newlines` line ends take at least, for a chunk's
 * intrinsic size before it was ever shown (after that the browser remembers its size). */
export function estimatedLines(chars: number, newlines: number): number {
  return Math.max(1, newlines + Math.ceil((chars - newlines) / CHARS_PER_LINE));
}

interface Chunk {
  element: HTMLElement;
  items: number;
  chars: number;
  newlines: number;
  sealed: boolean;
}

interface Item {
  element: HTMLElement;
  chunk: Chunk;
  /** The `span.rd-node` that holds it. */
  holder: HTMLElement;
  text: string;
}

export class ChunkedText {
  private readonly chunks: Chunk[] = [];
  private readonly items: Item[] = [];
  /** Each node's holders, for marking a failed node. */
  private readonly holders = new Map<number, Set<HTMLElement>>();
  private readonly failed = new Set<number>();

  constructor(private readonly container: HTMLElement) {}

  get length(): number {
    return this.items.length;
  }

  /** The item at `index` (for tests and tools). */
  itemAt(index: number): HTMLElement | undefined {
    return this.items[index]?.element;
  }

  /** Take every item from `index` on off the end; their chunks open again. */
  truncate(index: number): void {
    while (this.items.length > index) {
      const item = this.items.pop() as Item;
      item.element.remove();
      const chunk = item.chunk;
      chunk.items -= 1;
      chunk.chars -= item.text.length;
      chunk.newlines -= countNewlines(item.text);
      if (chunk.sealed) this.unseal(chunk);
      if (item.holder.firstChild === null) {
        item.holder.remove();
        const nodeId = Number(item.holder.dataset.node);
        const holders = this.holders.get(nodeId);
        holders?.delete(item.holder);
        if (holders?.size === 0) this.holders.delete(nodeId);
      }
      if (chunk.items === 0) {
        chunk.element.remove();
        this.chunks.pop();
      }
    }
  }

  /** Add `items` of node `nodeId` at the end; `texts` are the text each shows. */
  append(nodeId: number, items: readonly HTMLElement[], texts: readonly string[]): void {
    let chunk = this.openChunk();
    let holder = this.holderIn(chunk, nodeId);
    // Items are gathered per holder and added at once (one DOM write per holder).
    let batch: HTMLElement[] = [];
    const flush = () => {
      if (batch.length) holder.append(...batch);
      batch = [];
    };
    items.forEach((item, index) => {
      const text = texts[index];
      batch.push(item);
      this.items.push({element: item, chunk, holder, text});
      chunk.items += 1;
      chunk.chars += text.length;
      chunk.newlines += countNewlines(text);
      if (sealsAfter(chunk.items, text)) {
        flush();
        this.seal(chunk);
        if (index < items.length - 1) {
          chunk = this.openChunk();
          holder = this.holderIn(chunk, nodeId);
        }
      }
    });
    flush();
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
    const chunk: Chunk = {element: element("span", "rd-chunk"), items: 0, chars: 0, newlines: 0, sealed: false};
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

  private seal(chunk: Chunk): void {
    chunk.sealed = true;
    const lines = estimatedLines(chunk.chars, chunk.newlines);
    chunk.element.style.setProperty("contain-intrinsic-size", `auto none auto ${lines * LINE_PX}px`);
    chunk.element.classList.add("rd-sealed");
  }

  private unseal(chunk: Chunk): void {
    chunk.sealed = false;
    chunk.element.style.removeProperty("contain-intrinsic-size");
    chunk.element.classList.remove("rd-sealed");
  }
}

function countNewlines(text: string): number {
  let count = 0;
  for (let at = text.indexOf("\n"); at !== -1; at = text.indexOf("\n", at + 1)) count++;
  return count;
}
