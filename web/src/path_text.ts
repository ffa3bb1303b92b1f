// The text of one path of nodes (the run's, or an explored branch's), shown incrementally
// in chunks (chunks.ts). Each node keeps the pieces it shows, each with its element; a node
// whose changes only added tokens decodes only those, any other change decodes the node
// again and keeps the pieces that did not change; the text's items are then taken off from
// the first that changed and added again from there. So streaming touches the end alone, a
// backtrack or healing only what it took back, a branch switched what the new branch shows.
// Text is decoded per run (pieces.ts), and a run goes on from node to node: a node decodes
// again when the unfinished character it starts with, or whether its run ends with it,
// changes. A running generation's unfinished last character waits for its next token.

import type {NodeState} from "./state";
import type {PathPart, Piece} from "./pieces";
import {RunText, decodeRun, feedPiece, partPieces} from "./pieces";
import type {TextItem} from "./chunks";
import {ChunkedText} from "./chunks";

/** A piece as shown: the text that shows, and its element, made when its chunk is built. */
export interface ShownPiece extends TextItem {
  readonly piece: Piece;
}

interface RenderedNode {
  /** The node's state it shows (a reset makes new ones). */
  node: NodeState;
  revision: number;
  cut: number;
  /** The waiting bytes of an unfinished character its run brought in, as a key. */
  carryIn: string;
  /** Whether its run ends with it (waiting bytes shown) or may go on into the next node. */
  endsRun: boolean;
  /** Its run after its last piece: the waiting bytes go on into the next node. */
  run: RunText;
  /** Its pieces as shown, each with its element, in order. */
  pieces: ShownPiece[];
  /** Its tokens that `pieces` show (a generation's, appended as they stream). */
  tokensShown: number;
  /** Whether it is marked failed (null: not yet marked either way). */
  failed: boolean | null;
}

export class PathText {
  private rendered = new Map<number, RenderedNode>();
  private readonly chunks: ChunkedText;
  private shownPath: number[] = [];

  /** `makePiece` gives a piece as shown (the view's tokens, labels, placeholders);
   * `lazy`: whether chunks away from the screen wait to be built (chunks.ts). */
  constructor(
    container: HTMLElement,
    private readonly makePiece: (piece: Piece) => ShownPiece,
    lazy?: boolean,
  ) {
    this.chunks = new ChunkedText(container, lazy);
  }

  /** The text's chunks (for tests and tools). */
  get chunked(): ChunkedText {
    return this.chunks;
  }

  /** The nodes of the path shown. */
  get nodeIds(): readonly number[] {
    return this.shownPath;
  }

  /** Show `parts` (a path, root first), `endsRun` saying for each whether its run of text
   * ends with it (pieces.ts `runEnds`). */
  show(parts: PathPart[], endsRun: boolean[]): void {
    const ids = parts.map((part) => part.node.record.id);
    const onPath = new Set(ids);
    for (const id of this.rendered.keys()) if (!onPath.has(id)) this.rendered.delete(id);
    let carry: Uint8Array = new Uint8Array(0);
    let offset = 0; // where the node's items start
    let dirty = Infinity; // the first item that is not shown as it should be
    parts.forEach((part, index) => {
      const id = part.node.record.id;
      const carryKey = carry.join(",");
      const before = this.rendered.get(id);
      let shown = before !== undefined && before.node === part.node ? before : undefined;
      const same =
        shown !== undefined &&
        shown.revision === part.node.revision &&
        shown.cut === part.cut &&
        shown.carryIn === carryKey &&
        shown.endsRun === endsRun[index];
      const shownBefore = shown?.pieces.length ?? 0;
      let firstChanged = shownBefore;
      if (shown === undefined || !same) {
        const appendable =
          shown !== undefined &&
          part.node.appendOnly &&
          part.cut === shown.cut &&
          shown.carryIn === carryKey &&
          !shown.endsRun &&
          !endsRun[index] &&
          part.node.record.entries.length === 0 &&
          !part.node.record.hidden;
        if (shown !== undefined && appendable) {
          this.appendTokens(shown, part.node);
        } else {
          const run = new RunText(carry);
          const pieces = decodeRun(partPieces(part), run, endsRun[index]);
          const old = shown?.pieces ?? [];
          firstChanged = 0;
          while (
            firstChanged < old.length &&
            firstChanged < pieces.length &&
            samePiece(old[firstChanged].piece, pieces[firstChanged])
          ) {
            firstChanged++;
          }
          const kept = old.slice(0, firstChanged);
          for (const piece of pieces.slice(firstChanged)) kept.push(this.makePiece(piece));
          shown = {
            node: part.node,
            revision: 0,
            cut: part.cut,
            carryIn: carryKey,
            endsRun: false,
            run,
            pieces: kept,
            tokensShown: part.node.tokens.length,
            failed: shown?.failed ?? null,
          };
          this.rendered.set(id, shown);
        }
        shown.revision = part.node.revision;
        shown.cut = part.cut;
        shown.carryIn = carryKey;
        shown.endsRun = endsRun[index];
      }
      // A node new at this place of the path is added whole.
      const added = this.shownPath[index] !== id || before === undefined || before.node !== part.node;
      if (added) firstChanged = 0;
      if (added || firstChanged < Math.max(shownBefore, shown.pieces.length)) dirty = Math.min(dirty, offset + firstChanged);
      offset += shown.pieces.length;
      const failed = part.node.state === "error";
      if (failed !== shown.failed) {
        shown.failed = failed;
        this.chunks.setFailed(id, failed);
      }
      carry = shown.run.pending;
    });
    // Items beyond the path's end (a shorter path, a node that lost pieces) go too.
    if (this.chunks.length > offset) dirty = Math.min(dirty, offset);
    if (dirty < Infinity) this.showFrom(dirty, ids);
    this.shownPath = ids;
  }

  /** Take the text's items from `start` on off, and add the path's pieces from there. */
  private showFrom(start: number, ids: number[]): void {
    this.chunks.truncate(start);
    let at = 0;
    for (const id of ids) {
      const pieces = this.rendered.get(id)?.pieces ?? [];
      if (at + pieces.length > start) {
        const fresh = pieces.slice(Math.max(0, start - at));
        this.chunks.append(id, fresh);
      }
      at += pieces.length;
    }
  }

  private appendTokens(shown: RenderedNode, node: NodeState): void {
    for (const token of node.tokens.slice(shown.tokensShown)) {
      const piece: Piece = {kind: "token", token: token.record, backtracked: false, text: ""};
      piece.text = feedPiece(shown.run, piece);
      shown.pieces.push(this.makePiece(piece));
    }
    shown.tokensShown = node.tokens.length;
  }
}

/** Whether two pieces show the same: the same token (and whether it was taken back) or the
 * same text, label or placeholder. */
function samePiece(a: Piece, b: Piece): boolean {
  switch (a.kind) {
    case "text":
      return b.kind === "text" && a.text === b.text;
    case "token":
      return b.kind === "token" && a.token === b.token && a.backtracked === b.backtracked && a.text === b.text;
    case "role_open":
    case "role_close":
      return b.kind === a.kind && a.role === b.role;
    case "hidden":
      return b.kind === "hidden" && a.chars === b.chars;
  }
}
