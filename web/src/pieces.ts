// A node's visible content as a flat list of pieces: fixed text, tokens, role labels and
// the placeholder of hidden text. Roles come from the structured state (role entries), never
// from matching a chat format's markers in the text.

import type {TokenRecord} from "./protocol";
import type {NodeState, RunState, ViewToken} from "./state";
import {pathOf} from "./state";

export type Piece =
  | {kind: "text"; text: string}
  | {kind: "token"; token: TokenRecord; backtracked: boolean; text: string}
  | {kind: "role_open"; role: string}
  | {kind: "role_close"; role: string}
  | {kind: "hidden"; chars: number | null};

const encoder = new TextEncoder();

/** The UTF-8 size of a piece's text as the model saw it (a token: its own bytes). */
export function byteLength(piece: Piece): number {
  if (piece.kind === "text") return encoder.encode(piece.text).length;
  if (piece.kind === "token") {
    if (piece.backtracked) return 0;
    const b64 = piece.token.bytes_b64;
    return b64 === null ? encoder.encode(piece.token.text).length : atob(b64).length;
  }
  return 0;
}

/** The node's pieces, before healing by the next node. */
export function nodePieces(node: NodeState): Piece[] {
  const record = node.record;
  if (record.hidden) {
    return [{kind: "hidden", chars: record.hidden_chars ?? node.hiddenChars}];
  }
  if (!record.echo) return [];
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
  if (record.entries.length === 0) pieces.push(...node.tokens.map(tokenPiece));
  return pieces;
}

function tokenPiece(token: ViewToken): Piece {
  return {kind: "token", token: token.record, backtracked: token.backtracked, text: token.record.text};
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
      const kept = encoder.encode(piece.text).slice(0, size - left);
      const text = new TextDecoder().decode(kept);
      out[i] = piece.kind === "text" ? {kind: "text", text} : {...piece, text};
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

/** The path the view shows, each node with the bytes token healing took off its end. Only
 * the nodes before a healing node are flattened (to measure them): a long generation
 * costs nothing here while nothing heals it. */
export function pathCuts(state: RunState, nodeId: number | null = state.lastNodeId): PathPart[] {
  const parts: PathPart[] = pathOf(state, nodeId).map((node) => ({node, cut: 0}));
  for (let i = parts.length - 1; i > 0; i--) {
    let left = parts[i].node.healedBytes;
    for (let j = i - 1; j >= 0 && left > 0; j--) {
      const size = nodePieces(parts[j].node).reduce((sum, piece) => sum + byteLength(piece), 0);
      const cut = Math.min(Math.max(0, size - parts[j].cut), left);
      parts[j].cut += cut;
      left -= cut;
    }
  }
  return parts;
}

/** A path part's pieces after healing. */
export function partPieces(part: PathPart): Piece[] {
  const pieces = nodePieces(part.node);
  return part.cut ? cutBytes(pieces, part.cut) : pieces;
}

/** The path the view shows, each node with its pieces after healing. */
export function pathParts(
  state: RunState,
  nodeId: number | null = state.lastNodeId,
): (PathPart & {pieces: Piece[]})[] {
  return pathCuts(state, nodeId).map((part) => ({...part, pieces: partPieces(part)}));
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
