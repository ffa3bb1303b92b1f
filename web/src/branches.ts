// An explored branch as the view shows it, beside the program: where it left the original
// (which token it chose there, instead of which), its own text (tokens with their
// tooltips, made by the view), its captures and its figures.

import type {NodeState, RunState} from "./state";
import {element} from "./dom";
import {count, seconds, tokenLabel, visibleText} from "./format";
import {outputToken} from "./explore";

/** The label of a branch: the token chosen and the original's token there. */
export function branchLabel(state: RunState, node: NodeState): string {
  const from = node.record.explored;
  if (from === null || from === undefined) return "explored";
  const where = `explored from token ${from.token_index} of step ${from.node_id}`;
  const chosen = outputToken(node, from.token_index);
  const original = state.nodes.get(from.node_id);
  const taken = original === undefined ? null : outputToken(original, from.token_index);
  if (chosen === null) return where;
  const instead = taken === null ? "" : ` instead of ${tokenLabel(taken.text, taken.bytes_b64)}`;
  return `${where}: ${tokenLabel(chosen.text, chosen.bytes_b64)}${instead}`;
}

/** What a branch measured: its output tokens, forward passes and time. */
export function branchFigures(node: NodeState): string {
  const usage = node.usage ?? node.record.usage;
  if (usage === null) return node.state === "generating" ? "generating" : "";
  const perToken = usage.per_token_s === null ? "" : `, ${seconds(usage.per_token_s)}/token`;
  return (
    `${count(usage.output_tokens)} tokens out (${count(usage.generated_tokens)} generated, ` +
    `${count(usage.forced_tokens)} forced), ${count(usage.forward_passes)} forward passes` +
    perToken
  );
}

/** The parts of one branch's box; `body` holds its text, which the view keeps up to date. */
export interface BranchBox {
  box: HTMLElement;
  label: HTMLElement;
  body: HTMLElement;
  details: HTMLElement;
}

/** An empty box for the branch of node `nodeId`. */
export function branchShell(nodeId: number): BranchBox {
  const box = element("div", "rd-branch");
  box.dataset.node = String(nodeId);
  const label = element("div", "rd-branch-label");
  const body = element("div", "rd-branch-text");
  body.dataset.node = String(nodeId);
  const details = element("div", "rd-branch-details");
  box.append(label, body, details);
  return {box, label, body, details};
}

/** The label, captures and figures of a branch, as its node now has them. */
export function fillBranch(parts: BranchBox, state: RunState, node: NodeState): void {
  parts.label.textContent = branchLabel(state, node);
  const shown: HTMLElement[] = [];
  const captures = node.captures.filter((capture) => !capture.removed);
  if (captures.length) {
    const list = element("div", "rd-branch-captures");
    for (const capture of captures) {
      const item = element("span", "rd-branch-capture");
      item.append(
        element("span", "rd-branch-capture-name", visibleText(capture.name)),
        element("span", "rd-branch-capture-value", visibleText(capture.value)),
      );
      list.append(item);
    }
    shown.push(list);
  }
  const figures = branchFigures(node);
  if (figures) shown.push(element("div", "rd-branch-figures", figures));
  parts.details.replaceChildren(...shown);
}
