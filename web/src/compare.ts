// Two runs compared: which visible pieces of each differ from the other's.
//
// The pieces (fixed text, tokens) of each run's shown path are matched by their text with a
// longest common subsequence, after taking off the prefix and suffix the two share; what is
// left unmatched is a difference. Past MAX_CELLS the middle is not matched: all of it differs.

import type {Piece} from "./pieces";
import {pathParts} from "./pieces";
import type {RunState} from "./state";

export const MAX_CELLS = 4_000_000;

/** The text of each piece a view renders as one element (`.rd-input`, `.rd-token`), in order. */
export function comparableTexts(state: RunState): string[] {
  const out: string[] = [];
  for (const part of pathParts(state)) {
    for (const piece of part.pieces) {
      const text = pieceText(piece);
      if (text !== null) out.push(text);
    }
  }
  return out;
}

function pieceText(piece: Piece): string | null {
  if (piece.kind === "text") return piece.text;
  if (piece.kind === "token") return piece.backtracked ? `\u0000backtracked:${piece.text}` : piece.text;
  return null;
}

export interface Differences {
  /** For each piece of the left run, whether it differs. */
  left: boolean[];
  /** For each piece of the right run, whether it differs. */
  right: boolean[];
}

export function differences(left: string[], right: string[]): Differences {
  const out: Differences = {left: left.map(() => true), right: right.map(() => true)};
  let start = 0;
  while (start < left.length && start < right.length && left[start] === right[start]) {
    out.left[start] = out.right[start] = false;
    start++;
  }
  let endLeft = left.length;
  let endRight = right.length;
  while (endLeft > start && endRight > start && left[endLeft - 1] === right[endRight - 1]) {
    endLeft--;
    endRight--;
    out.left[endLeft] = out.right[endRight] = false;
  }
  const rows = endLeft - start;
  const columns = endRight - start;
  if (rows === 0 || columns === 0 || rows * columns > MAX_CELLS) return out;
  // lengths[i * (columns + 1) + j]: the longest common subsequence of the middles' tails.
  const width = columns + 1;
  const lengths = new Uint32Array((rows + 1) * width);
  for (let i = rows - 1; i >= 0; i--) {
    for (let j = columns - 1; j >= 0; j--) {
      lengths[i * width + j] =
        left[start + i] === right[start + j]
          ? lengths[(i + 1) * width + j + 1] + 1
          : Math.max(lengths[(i + 1) * width + j], lengths[i * width + j + 1]);
    }
  }
  let i = 0;
  let j = 0;
  while (i < rows && j < columns) {
    if (left[start + i] === right[start + j]) {
      out.left[start + i] = out.right[start + j] = false;
      i++;
      j++;
    } else if (lengths[(i + 1) * width + j] >= lengths[i * width + j + 1]) {
      i++;
    } else {
      j++;
    }
  }
  return out;
}

/** Captures whose values differ between two runs (or that only one has), by name. */
export function differingCaptures(left: RunState, right: RunState): Set<string> {
  const a = capturesOf(left);
  const b = capturesOf(right);
  const out = new Set<string>();
  for (const name of new Set([...a.keys(), ...b.keys()])) {
    if (a.get(name) !== b.get(name)) out.add(name);
  }
  return out;
}

export function capturesOf(state: RunState): Map<string, string> {
  const out = new Map<string, string>();
  for (const node of state.nodes.values()) {
    for (const capture of node.captures) {
      if (capture.removed) out.delete(capture.name);
      else out.set(capture.name, capture.value);
    }
  }
  return out;
}
