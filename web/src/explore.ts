// Exploring from a token: which node the view shows as the program, which nodes are
// explored branches (shown beside it), and where a token sits in its generation's output
// (what the kernel's `rudder.explore` counts).

import type {TokenRecord} from "./protocol";
import type {NodeState, RunState} from "./state";

/** The node whose path is the program: the last node added that is not an explored branch. */
export function mainNodeId(state: RunState): number | null {
  let main: number | null = null;
  for (const [id, node] of state.nodes) if (!node.record.explored) main = id;
  return main ?? state.lastNodeId;
}

/** Explored branches, in the order they were added. */
export function exploredNodes(state: RunState): NodeState[] {
  return [...state.nodes.values()].filter((node) => node.record.explored);
}

/** The index of `token` among its generation's output tokens (backtracked ones left out), or
 * null when it is not one of them. */
export function outputIndex(node: NodeState, token: TokenRecord): number | null {
  let index = 0;
  for (const entry of node.record.entries) {
    if (entry.kind !== "token") continue;
    if (entry === token) return index;
    index += 1;
  }
  index = 0;
  for (const streamed of node.tokens) {
    if (streamed.backtracked) continue;
    if (streamed.record === token) return index;
    index += 1;
  }
  return null;
}

/** The generation's output token at `index` (backtracked ones left out), or null. */
export function outputToken(node: NodeState, index: number): TokenRecord | null {
  const recorded = node.record.entries.filter((entry): entry is TokenRecord => entry.kind === "token");
  if (recorded.length) return recorded[index] ?? null;
  const streamed = node.tokens.filter((token) => !token.backtracked);
  return streamed[index]?.record ?? null;
}

/** What the view asks when a candidate is clicked. */
export interface ExploreChoice {
  nodeId: number;
  tokenIndex: number;
  tokenId: number;
  text: string;
}

/** Who answers: the kernel through the widget, or nobody (an export, a saved notebook). */
export type Explorer = (choice: ExploreChoice) => void;
