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

/** The box of one branch: `text` is its generation's text, as the view draws tokens. */
export function branchBox(state: RunState, node: NodeState, text: Node[]): HTMLElement {
  const box = element("div", "rd-branch");
  box.dataset.node = String(node.record.id);
  box.append(element("div", "rd-branch-label", branchLabel(state, node)));
  const body = element("div", "rd-branch-text");
  body.dataset.node = String(node.record.id);
  body.append(...text);
  box.append(body);
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
    box.append(list);
  }
  const figures = branchFigures(node);
  if (figures) box.append(element("div", "rd-branch-figures", figures));
  return box;
}
