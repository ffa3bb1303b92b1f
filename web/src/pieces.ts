// A node's visible content as a flat list of pieces: fixed text, tokens, role labels and
// the placeholder of hidden text. Roles come from the structured state (role entries), never
// from matching a chat format's markers in the text.
//
// Text is decoded per run, not per token (`RunText`, `decodeRun`): a run of text and tokens
// (labels and placeholders end one, and it goes on from node to node) is one stream of
// UTF-8, and each piece shows the characters whose last byte it holds, so a character
// split over byte-level tokens is shown once, whole. The same rule as the Python views'
// (rudder/_shown_text.py).

import type {TokenRecord} from "./protocol";
import type {NodeState, RunState} from "./state";
import {pathOf} from "./state";

// `text` is what a piece shows; `bytes`, when set, its exact bytes (a piece cut by healing),
// else they are those of its text (fixed text) or of its token.
export type Piece =
  | {kind: "text"; text: string; bytes?: Uint8Array}
  | {kind: "token"; token: TokenRecord; backtracked: boolean; text: string; bytes?: Uint8Array}
  | {kind: "role_open"; role: string}
  | {kind: "role_close"; role: string}
  | {kind: "hidden"; chars: number | null};

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8");
const NO_BYTES = new Uint8Array(0);

/** A token's own bytes, exactly. */
export function tokenBytes(token: TokenRecord): Uint8Array {
  if (token.bytes_b64 === null) return encoder.encode(token.text);
  return Uint8Array.from(atob(token.bytes_b64), (c) => c.charCodeAt(0));
}

/** The exact bytes of a text or token piece (none for labels and placeholders). */
export function pieceBytes(piece: Piece): Uint8Array {
  if (piece.kind === "text") return piece.bytes ?? encoder.encode(piece.text);
  if (piece.kind === "token") return piece.bytes ?? tokenBytes(piece.token);
  return NO_BYTES;
}

/** The UTF-8 size of a piece's text as the model saw it (a token: its own bytes). */
export function byteLength(piece: Piece): number {
  if (piece.kind === "token" && piece.backtracked) return 0;
  return pieceBytes(piece).length;
}

/** Whether a piece is part of a run of text (backtracked tokens are not: they show their
 * own text, struck through). */
export function inRun(piece: Piece): boolean {
  return piece.kind === "text" || (piece.kind === "token" && !piece.backtracked);
}

/** How many bytes at the end of `bytes` begin a character that is not finished: a lead
 * byte and the continuation bytes it allows so far (0 when the last character is whole or
 * the bytes form none). */
export function unfinishedLength(bytes: Uint8Array): number {
  for (let back = 1; back <= Math.min(3, bytes.length); back++) {
    const lead = bytes[bytes.length - back];
    if (lead >= 0x80 && lead <= 0xbf) continue; // a continuation byte: look further back
    const need = lead >= 0xf0 && lead <= 0xf4 ? 4 : lead >= 0xe0 && lead <= 0xef ? 3 : lead >= 0xc2 && lead <= 0xdf ? 2 : 0;
    if (need <= back) return 0;
    // The second byte's range depends on the lead (no overlong forms, no surrogates).
    if (back > 1) {
      const second = bytes[bytes.length - back + 1];
      const low = lead === 0xe0 ? 0xa0 : lead === 0xf0 ? 0x90 : 0x80;
      const high = lead === 0xed ? 0x9f : lead === 0xf4 ? 0x8f : 0xbf;
      if (second < low || second > high) return 0;
    }
    return back;
  }
  return 0;
}

/** One run of text decoded piece by piece: `feed` gives the characters a piece's bytes
 * complete (the bytes of an unfinished one wait); `end` shows waiting bytes that never
 * became a character as U+FFFD. */
export class RunText {
  pending: Uint8Array;

  constructor(pending: Uint8Array = NO_BYTES) {
    this.pending = pending;
  }

  feed(bytes: Uint8Array): string {
    let all = bytes;
    if (this.pending.length) {
      all = new Uint8Array(this.pending.length + bytes.length);
      all.set(this.pending);
      all.set(bytes, this.pending.length);
    }
    const keep = unfinishedLength(all);
    this.pending = all.slice(all.length - keep);
    return decoder.decode(all.subarray(0, all.length - keep));
  }

  end(): string {
    const rest = this.pending.length ? decoder.decode(this.pending) : "";
    this.pending = NO_BYTES;
    return rest;
  }
}

/** What a piece of a run shows (`run.feed` of its bytes); text that is whole characters,
 * with nothing waiting before it, is its own answer, without encoding and decoding it. */
export function feedPiece(run: RunText, piece: Piece): string {
  if (piece.kind !== "text" && piece.kind !== "token") return "";
  const ownText = piece.bytes === undefined && (piece.kind === "text" || piece.token.bytes_b64 === null);
  if (ownText && run.pending.length === 0 && !SURROGATES.test(piece.text)) return piece.text;
  return run.feed(pieceBytes(piece));
}

// Text with surrogates (a lone one is not UTF-8) goes the long way.
const SURROGATES = /[\ud800-\udfff]/;

/** `pieces` with their text decoded per run, starting with the bytes `run` holds waiting.
 * Labels and placeholders end a run; so does the end of `pieces` when `endRun` (else the
 * bytes left waiting stay in `run`, for the pieces that follow). */
export function decodeRun(pieces: Piece[], run: RunText, endRun: boolean): Piece[] {
  const out: Piece[] = [];
  let last = -1; // the index in `out` of the latest piece of the run
  const closeRun = () => {
    const rest = run.end();
    if (rest && last >= 0) {
      const piece = out[last] as Extract<Piece, {kind: "text" | "token"}>;
      out[last] = {...piece, text: piece.text + rest};
    }
  };
  for (const piece of pieces) {
    if (inRun(piece)) {
      out.push(withText(piece as Extract<Piece, {kind: "text" | "token"}>, feedPiece(run, piece)));
      last = out.length - 1;
    } else {
      if (piece.kind !== "token") {
        closeRun();
        last = -1;
      }
      out.push(piece);
    }
  }
  if (endRun) closeRun();
  return out;
}

/** A text or token piece showing `text`: the piece itself when it shows that already (as
 * most do), else a copy made field by field, not spread (this runs for each token of a run). */
function withText(piece: Extract<Piece, {kind: "text" | "token"}>, text: string): Piece {
  if (piece.text === text) return piece;
  if (piece.kind === "text") return piece.bytes === undefined ? {kind: "text", text} : {kind: "text", text, bytes: piece.bytes};
  const {token, backtracked, bytes} = piece;
  return bytes === undefined ? {kind: "token", token, backtracked, text} : {kind: "token", token, backtracked, text, bytes};
}

/** The node's pieces, before healing by the next node. */
export function nodePieces(node: NodeState): Piece[] {
  const record = node.record;
  if (record.hidden) {
    return [{kind: "hidden", chars: record.hidden_chars ?? node.hiddenChars}];
  }
  // A node made with echo off comes without its text to a live view, with it to an export.
  const pieces: Piece[] = [];
  for (const entry of record.entries) {
    switch (entry.kind) {
      case "text":
        if (entry.text) pieces.push({kind: "text", text: entry.text});
        break;
      case "token":
        pieces.push({kind: "token", token: entry, backtracked: false, text: entry.text});
        break;
      case "role_open":
        pieces.push({kind: "role_open", role: entry.role});
        break;
      case "role_close":
        pieces.push({kind: "role_close", role: entry.role});
        break;
    }
  }
  if (record.entries.length === 0) {
    const tokens = node.tokens;
    for (let i = 0; i < tokens.length; i++) {
      const {record: token, backtracked} = tokens[i];
      pieces.push({kind: "token", token, backtracked, text: token.text});
    }
  }
  return pieces;
}

/** Take `bytes` bytes off the end of `pieces` (token healing re-made them). A piece cut in
 * part keeps the rest of its text; backtracked tokens and labels are not text. */
export function cutBytes(pieces: Piece[], bytes: number): Piece[] {
  const out = pieces.slice();
  let left = bytes;
  for (let i = out.length - 1; i >= 0 && left > 0; i--) {
    const piece = out[i];
    const size = byteLength(piece);
    if (size === 0) continue;
    if (size <= left) {
      out.splice(i, 1);
      left -= size;
      continue;
    }
    if (piece.kind === "text" || piece.kind === "token") {
      const kept = pieceBytes(piece).slice(0, size - left);
      out[i] = {...piece, text: decoder.decode(kept), bytes: kept};
    }
    left = 0;
  }
  return out;
}

export interface PathPart {
  node: NodeState;
  /** Bytes the nodes after this one healed off its end (0 for most). */
  cut: number;
}

/** The path the view shows, each node with the bytes token healing took off its end: the
 * cuts the stream gave the nodes of the path, applied. A stream of the first form gave the
 * healed bytes alone: they are taken off the nodes before, nearest first (the publisher's
 * rule, rudder/visual/stream/_healing.py); only the nodes before a healing node are
 * measured for that. */
export function pathCuts(state: RunState, nodeId: number | null = state.lastNodeId): PathPart[] {
  const parts: PathPart[] = pathOf(state, nodeId).map((node) => ({node, cut: 0}));
  const index = new Map(parts.map((part, i) => [part.node.record.id, i]));
  for (let i = 0; i < parts.length; i++) {
    const cuts = parts[i].node.cuts;
    if (cuts === null) {
      firstFormCut(parts, i);
      continue;
    }
    for (const cut of cuts) {
      const target = index.get(cut.node_id);
      if (target !== undefined) parts[target].cut += cut.bytes;
    }
  }
  return parts;
}

function firstFormCut(parts: PathPart[], i: number): void {
  let left = parts[i].node.healedBytes;
  for (let j = i - 1; j >= 0 && left > 0; j--) {
    const size = nodePieces(parts[j].node).reduce((sum, piece) => sum + byteLength(piece), 0);
    const cut = Math.min(Math.max(0, size - parts[j].cut), left);
    parts[j].cut += cut;
    left -= cut;
  }
}

/** A path part's pieces after healing. */
export function partPieces(part: PathPart): Piece[] {
  const pieces = nodePieces(part.node);
  return part.cut ? cutBytes(pieces, part.cut) : pieces;
}

/** The path the view shows, each node with its pieces after healing, decoded as runs of
 * text that go on from node to node (a running generation's unfinished last character
 * waits for its next token). */
export function pathParts(
  state: RunState,
  nodeId: number | null = state.lastNodeId,
): (PathPart & {pieces: Piece[]})[] {
  const run = new RunText();
  const parts = pathCuts(state, nodeId);
  const last = parts[parts.length - 1]?.node;
  const ends = runEnds(parts, last !== undefined && last.state === "generating");
  return parts.map((part, index) => ({...part, pieces: decodeRun(partPieces(part), run, ends[index])}));
}

/** For each part, whether the run of text it is in ends with it: the next part that shows
 * anything starts with a label or placeholder, or there is none and the path's last node
 * is not generating (`generatingAtEnd`: its unfinished last character waits for more). */
export function runEnds(parts: PathPart[], generatingAtEnd: boolean): boolean[] {
  const ends: boolean[] = new Array(parts.length).fill(false);
  let next: "text" | "other" | null = null;
  for (let i = parts.length - 1; i >= 0; i--) {
    const kind = firstPieceKind(parts[i].node);
    if (kind === "none") continue;
    ends[i] = next === null ? !generatingAtEnd : next !== "text";
    next = kind;
  }
  return ends;
}

/** How a node's pieces start: with text (a run may go on into it), with a label or
 * placeholder (a run ends before it), or with nothing to show. */
export function firstPieceKind(node: NodeState): "text" | "other" | "none" {
  if (node.record.hidden) return "other";
  for (const entry of node.record.entries) {
    if (entry.kind === "token" || (entry.kind === "text" && entry.text)) return "text";
    if (entry.kind === "role_open" || entry.kind === "role_close") return "other";
  }
  if (node.record.entries.length === 0 && node.tokens.some((token) => !token.backtracked)) return "text";
  return "none";
}

/** The path's text as the Python side's `RunView.text()` gives it: roles as `<role>`
 * markers, hidden nodes as `[hidden: N characters]`, backtracked tokens left out. */
export function pathText(state: RunState, nodeId: number | null = state.lastNodeId): string {
  let out = "";
  for (const part of pathParts(state, nodeId)) {
    for (const piece of part.pieces) {
      if (piece.kind === "text") out += piece.text;
      else if (piece.kind === "token") out += piece.backtracked ? "" : piece.text;
      else if (piece.kind === "role_open") out += `<${piece.role}>`;
      else if (piece.kind === "role_close") out += `</${piece.role}>`;
      else out += piece.chars === null ? "[hidden]" : `[hidden: ${piece.chars} characters]`;
    }
  }
  return out;
}
