// The tooltip of one token: what it is, how sure the model was, and what else it could
// have chosen, unconstrained (those the grammar forbade struck through) and, when the
// chosen token was unlikely or the kernel's detail came, the likeliest ones the grammar
// allowed.

import type {CandidateRecord, TokenRecord} from "./protocol";
import {element} from "./dom";
import {percent, seconds, tokenLabel} from "./format";

/** Rows per candidate table. */
export const CANDIDATE_ROWS = 5;
/** Below this probability the chosen token is "unlikely": the allowed table is shown. */
export const LOW_PROBABILITY = 0.5;

/** What the kernel told about the token on request: more rows (its top and top allowed
 * candidates replace the streamed ones), the allowed-set size. */
export interface TooltipDetail {
  rows: number;
  allowedCount: number;
}

/** Called with a candidate the grammar allowed when its row is clicked (null: not offered). */
export type OnChoose = ((candidate: CandidateRecord) => void) | null;

function candidateTable(
  title: string,
  candidates: CandidateRecord[],
  chosenId: number,
  kind: string,
  onChoose: OnChoose,
  rows: number,
): HTMLElement {
  const section = element("div", `rd-tip-section rd-tip-${kind}`);
  section.append(element("div", "rd-tip-heading", title));
  const table = element("table", "rd-tip-table");
  for (const candidate of candidates.slice(0, rows)) {
    const row = element("tr", "rd-tip-row");
    if (!candidate.allowed) row.classList.add("rd-forbidden");
    if (candidate.id === chosenId) row.classList.add("rd-chosen");
    row.title = candidate.allowed ? "" : "the grammar forbade this token";
    if (onChoose !== null && candidate.allowed && candidate.id !== chosenId) {
      row.classList.add("rd-explorable");
      row.title = "explore: run this generation again with this token here";
      row.addEventListener("click", () => onChoose(candidate));
    }
    row.append(element("td", "rd-tip-cand", tokenLabel(candidate.text, candidate.bytes_b64)));
    const bar = element("td", "rd-tip-bar");
    const fill = element("span", "rd-tip-fill");
    fill.style.width = `${Math.round(Math.max(0, Math.min(1, candidate.prob)) * 100)}%`;
    bar.append(fill);
    row.append(bar, element("td", "rd-tip-prob", percent(candidate.prob)));
    table.append(row);
  }
  section.append(table);
  return section;
}

/** The tooltip's content for `token`. */
export function tooltipContent(
  token: TokenRecord,
  backtracked: boolean,
  onChoose: OnChoose = null,
  detail: TooltipDetail | null = null,
): HTMLElement {
  const rows = detail?.rows ?? CANDIDATE_ROWS;
  const root = element("div", "rd-tip-body");
  const head = element("div", "rd-tip-head");
  head.append(
    element("span", "rd-tip-token", tokenLabel(token.text, token.bytes_b64)),
    element("span", `rd-tip-source rd-src-${token.source}`, token.source),
  );
  if (backtracked) head.append(element("span", "rd-tip-backtracked", "backtracked"));
  root.append(head);

  const facts = element("div", "rd-tip-facts");
  facts.append(
    element("span", "rd-tip-fact", `probability ${percent(token.prob)}`),
    element("span", "rd-tip-fact", `latency ${seconds(token.latency_s)}`),
    element("span", "rd-tip-fact", `id ${token.id}`),
  );
  if (detail !== null) {
    facts.append(element("span", "rd-tip-fact rd-tip-allowed-count", `grammar allowed ${detail.allowedCount}`));
  }
  root.append(facts);

  if (token.top.length) {
    root.append(candidateTable("Model's top candidates", token.top, token.id, "top", onChoose, rows));
  }
  const allowed = (token.top_allowed ?? token.top).filter((candidate) => candidate.allowed);
  const unlikely = token.prob !== null && token.prob < LOW_PROBABILITY;
  // With the kernel's detail the allowed table shows whenever the grammar forbade one of the
  // top candidates: then the two tables differ.
  const forbidden = detail !== null && token.top.slice(0, rows).some((candidate) => !candidate.allowed);
  if (unlikely || forbidden) {
    if (allowed.length) {
      root.append(candidateTable("Likeliest the grammar allowed", allowed, token.id, "allowed", onChoose, rows));
    }
  }
  if (onChoose !== null && token.source === "generated") {
    root.append(element("div", "rd-tip-hint", "click an allowed candidate to explore from here"));
  }
  return root;
}
