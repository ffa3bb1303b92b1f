// The view of one run: a toolbar with the legend and colour choices, the text of the run
// (each token a span coloured by type, probability or latency), role labels, the tooltip
// and the metrics bar.
//
// Rendering is incremental: each node of the shown path keeps its element, a node whose
// changes only added tokens gets the new spans appended, any other change re-renders that
// node alone. Text is decoded per run (pieces.ts), and a run goes on from node to node: a
// node re-renders when the unfinished character it starts with, or whether its run ends
// with it, changes. A running generation's unfinished last character waits for its next
// token. Every piece of untrusted text reaches the DOM as a text node, never as markup, and
// with its controls and bidirectional overrides shown as escapes (`visibleText`).

import type {CandidateRecord, TokenDetailRecord, TokenRecord} from "./protocol";
import type {NodeState, RunState} from "./state";
import type {Piece} from "./pieces";
import {RunText, decodeRun, partPieces, pathCuts, runEnds, tokenBytes} from "./pieces";
import {latencyScale, visibleText, visibleWhitespace} from "./format";
import {metricsOf, runStatus} from "./metrics";
import {element} from "./dom";
import {tooltipContent} from "./tooltip";
import type {Explorer} from "./explore";
import {exploredNodes, mainNodeId, outputIndex} from "./explore";
import {branchBox} from "./branches";

export type BackgroundMode = "type" | "probability" | "latency" | "none";
export type UnderlineMode = "probability" | "latency" | "none";

export interface ViewOptions {
  background: BackgroundMode;
  underline: UnderlineMode;
}

export const DEFAULT_OPTIONS: ViewOptions = {background: "type", underline: "probability"};

interface RenderedNode {
  element: HTMLElement;
  revision: number;
  tokensShown: number;
  cut: number;
  /** The waiting bytes of an unfinished character its run brought in, as a key. */
  carryIn: string;
  /** Whether its run ends with it (waiting bytes shown) or may go on into the next node. */
  endsRun: boolean;
  /** Its run after its last piece: the waiting bytes go on into the next node. */
  run: RunText;
}

export class RunViewElement {
  readonly root: HTMLElement;
  private readonly text: HTMLElement;
  private readonly metrics: HTMLElement;
  private readonly tooltip: HTMLElement;
  private rendered = new Map<number, RenderedNode>();
  private shownPath: number[] = [];
  /** Token records by the index their span carries in `data-t`. */
  private tokens: {record: TokenRecord; backtracked: boolean}[] = [];
  private tokenIndex = new Map<TokenRecord, number>();
  private metricsKey = "";
  private readonly branches: HTMLElement;
  private branchesKey = "";
  private state: RunState | null = null;
  private explorer: Explorer | null = null;
  private pinned = false;
  private detailAsker: ((nodeId: number, tokenIndex: number) => void) | null = null;
  /** The explorable token whose tooltip is open, to show the kernel's detail in it. */
  private shownToken: {
    nodeId: number;
    tokenIndex: number;
    record: TokenRecord;
    backtracked: boolean;
    onChoose: (candidate: CandidateRecord) => void;
  } | null = null;

  constructor(
    parent: HTMLElement,
    private options: ViewOptions = {...DEFAULT_OPTIONS},
  ) {
    this.root = element("div", "rudder");
    this.root.append(this.toolbar());
    this.text = element("div", "rd-text");
    this.text.setAttribute("role", "document");
    this.metrics = element("div", "rd-metrics");
    this.tooltip = element("div", "rd-tooltip");
    this.tooltip.hidden = true;
    this.branches = element("div", "rd-branches");
    // Explored branches beside the program (explore.css).
    const beside = element("div", "rd-beside");
    beside.append(this.text, this.branches);
    this.root.append(beside, this.metrics, this.tooltip);
    this.applyOptions();
    for (const area of [this.text, this.branches]) {
      area.addEventListener("mouseover", (event) => this.hover(event));
      area.addEventListener("mouseleave", () => this.hideTooltip());
      // A click keeps a token's tooltip open, so that its candidates can be clicked.
      area.addEventListener("click", (event) => this.pin(event));
    }
    parent.append(this.root);
  }

  setTheme(dark: boolean): void {
    this.root.dataset.theme = dark ? "dark" : "light";
  }

  setOptions(options: Partial<ViewOptions>): void {
    this.options = {...this.options, ...options};
    this.applyOptions();
  }

  private applyOptions(): void {
    this.root.dataset.background = this.options.background;
    this.root.dataset.underline = this.options.underline;
    for (const select of this.root.querySelectorAll<HTMLSelectElement>("select[data-option]")) {
      select.value = this.options[select.dataset.option as keyof ViewOptions];
    }
  }

  // -- toolbar and legend --------------------------------------------------------------------

  private toolbar(): HTMLElement {
    const bar = element("div", "rd-toolbar");
    const legend = element("div", "rd-legend");
    for (const [source, label, description] of [
      ["input", "input", "text the program gave"],
      ["forced", "forced", "tokens the grammar forced: no model choice"],
      ["generated", "generated", "tokens the model chose"],
    ]) {
      const item = element("span", `rd-legend-item rd-legend-${source}`, label);
      item.title = description;
      legend.append(item);
    }
    const scale = element("span", "rd-legend-scale");
    scale.append(
      element("span", "rd-legend-low"),
      element("span", "rd-legend-gradient"),
      element("span", "rd-legend-high"),
    );
    scale.title = "probability: red is unlikely, green likely; latency: green is fast, red slow";
    legend.append(scale);
    bar.append(legend);
    const controls = element("div", "rd-controls");
    controls.append(
      this.select("background", "colour", ["type", "probability", "latency", "none"]),
      this.select("underline", "underline", ["probability", "latency", "none"]),
    );
    bar.append(controls);
    return bar;
  }

  private select(option: keyof ViewOptions, label: string, values: string[]): HTMLElement {
    const wrap = element("label", "rd-control");
    wrap.append(element("span", "", `${label} `));
    const select = element("select", "");
    select.dataset.option = option;
    for (const value of values) {
      const item = element("option", "", value);
      item.value = value;
      select.append(item);
    }
    select.addEventListener("change", () => this.setOptions({[option]: select.value}));
    wrap.append(select);
    return wrap;
  }

  // -- text ---------------------------------------------------------------------------------

  /** Bring the view in step with `state`. */
  update(state: RunState): void {
    this.state = state;
    const parts = pathCuts(state, mainNodeId(state));
    const last = parts[parts.length - 1]?.node;
    const endsRun = runEnds(parts, last !== undefined && last.state === "generating");
    let carry: Uint8Array = new Uint8Array(0);
    const ids = parts.map((part) => part.node.record.id);
    const samePrefix = (n: number) => this.shownPath[n] === ids[n];
    let keep = 0;
    while (keep < ids.length && keep < this.shownPath.length && samePrefix(keep)) keep++;
    // Nodes no longer on the path leave the DOM (a branch switched).
    for (const id of this.shownPath.slice(keep)) {
      this.rendered.get(id)?.element.remove();
      this.rendered.delete(id);
    }
    parts.forEach((part, index) => {
      const id = part.node.record.id;
      const carryIn = carry;
      const carryKey = carryIn.join(",");
      let shown = this.rendered.get(id);
      const appendable =
        shown !== undefined &&
        part.node.appendOnly &&
        part.cut === shown.cut &&
        shown.carryIn === carryKey &&
        !shown.endsRun &&
        !endsRun[index] &&
        part.node.record.entries.length === 0 &&
        !part.node.record.hidden;
      if (shown === undefined) {
        shown = {
          element: element("span", "rd-node"),
          revision: -1,
          tokensShown: 0,
          cut: -1,
          carryIn: "",
          endsRun: false,
          run: new RunText(),
        };
        shown.element.dataset.node = String(id);
        this.text.append(shown.element);
        this.rendered.set(id, shown);
      }
      const same =
        shown.revision === part.node.revision &&
        shown.cut === part.cut &&
        shown.carryIn === carryKey &&
        shown.endsRun === endsRun[index];
      if (!same) {
        if (appendable) {
          this.appendTokens(shown, part.node);
        } else {
          shown.run = new RunText(carryIn);
          const pieces = decodeRun(partPieces(part), shown.run, endsRun[index]);
          shown.element.replaceChildren(...this.pieceElements(pieces));
          shown.tokensShown = part.node.tokens.length;
        }
        shown.revision = part.node.revision;
        shown.cut = part.cut;
        shown.carryIn = carryKey;
        shown.endsRun = endsRun[index];
        shown.element.classList.toggle("rd-error", part.node.state === "error");
      }
      carry = shown.run.pending;
    });
    this.shownPath = ids;
    this.root.dataset.status = runStatus(state);
    this.updateBranches(state);
    this.updateMetrics(state);
  }

  private appendTokens(shown: RenderedNode, node: NodeState): void {
    const fresh = node.tokens.slice(shown.tokensShown);
    const fragment = document.createDocumentFragment();
    for (const token of fresh) {
      const text = shown.run.feed(tokenBytes(token.record));
      fragment.append(this.tokenElement({kind: "token", token: token.record, backtracked: false, text}));
    }
    shown.element.append(fragment);
    shown.tokensShown = node.tokens.length;
  }

  private pieceElements(pieces: Piece[]): Node[] {
    const out: Node[] = [];
    for (const piece of pieces) {
      switch (piece.kind) {
        case "text": {
          const span = element("span", "rd-input", visibleWhitespace(visibleText(piece.text)));
          out.push(span);
          break;
        }
        case "token":
          out.push(this.tokenElement(piece));
          break;
        case "role_open": {
          const label = element("span", "rd-role", visibleText(piece.role));
          label.dataset.role = piece.role;
          out.push(label);
          break;
        }
        case "role_close":
          out.push(element("span", "rd-role-end"));
          break;
        case "hidden":
          out.push(
            element(
              "span",
              "rd-hidden",
              piece.chars === null ? "[hidden]" : `[hidden: ${piece.chars} characters]`,
            ),
          );
          break;
      }
    }
    return out;
  }

  private tokenElement(piece: Extract<Piece, {kind: "token"}>): HTMLElement {
    const token = piece.token;
    const text = visibleWhitespace(visibleText(piece.text));
    const span = element("span", `rd-token rd-src-${token.source}`, text);
    if (piece.backtracked) span.classList.add("rd-backtracked");
    let index = this.tokenIndex.get(token);
    if (index === undefined) {
      index = this.tokens.length;
      this.tokens.push({record: token, backtracked: piece.backtracked});
      this.tokenIndex.set(token, index);
    } else {
      this.tokens[index].backtracked = piece.backtracked;
    }
    span.dataset.t = String(index);
    if (token.prob !== null) span.style.setProperty("--p", token.prob.toFixed(3));
    else span.classList.add("rd-no-prob");
    span.style.setProperty("--l", latencyScale(token.latency_s).toFixed(3));
    return span;
  }

  // -- tooltip ------------------------------------------------------------------------------

  /** Offer the candidates of generated tokens for exploring; `explorer` asks the kernel. */
  setExplorer(explorer: Explorer | null): void {
    this.explorer = explorer;
  }

  /** Say how an explore request stands (pending, done, an error), under the text. */
  setExploreStatus(text: string, kind: "pending" | "done" | "error"): void {
    let status = this.root.querySelector<HTMLElement>(".rd-explore-status");
    if (status === null) {
      status = element("div", "rd-explore-status");
      this.metrics.before(status);
    }
    status.dataset.kind = kind;
    status.textContent = visibleText(text);
  }

  private pin(event: MouseEvent): void {
    const target = (event.target as HTMLElement).closest<HTMLElement>(".rd-token");
    this.unpin();
    if (target === null) {
      this.hideTooltip();
      return;
    }
    this.hover(event);
    this.pinned = !this.tooltip.hidden;
    if (this.pinned && this.shownToken !== null) {
      this.detailAsker?.(this.shownToken.nodeId, this.shownToken.tokenIndex);
    }
    // Only a pinned tooltip takes the pointer: a hovered one must not cover the next token.
    this.tooltip.classList.toggle("rd-pinned", this.pinned);
  }

  private unpin(): void {
    this.pinned = false;
    this.tooltip.classList.remove("rd-pinned");
  }

  private hover(event: MouseEvent): void {
    if (this.pinned) return;
    const target = (event.target as HTMLElement).closest<HTMLElement>(".rd-token");
    if (target === null || target.dataset.t === undefined) return;
    const token = this.tokens[Number(target.dataset.t)];
    if (token === undefined) return;
    const nodeId = Number(target.closest<HTMLElement>("[data-node]")?.dataset.node);
    const node = this.state?.nodes.get(nodeId);
    const index = node === undefined ? null : outputIndex(node, token.record);
    const explorer = this.explorer;
    const offer =
      explorer !== null && index !== null && token.record.source === "generated" && !token.backtracked;
    const onChoose = offer
      ? (candidate: CandidateRecord) => {
          this.unpin();
          this.hideTooltip();
          explorer({nodeId, tokenIndex: index, tokenId: candidate.id, text: candidate.text});
        }
      : null;
    this.shownToken =
      onChoose === null || index === null
        ? null
        : {nodeId, tokenIndex: index, record: token.record, backtracked: token.backtracked, onChoose};
    this.tooltip.replaceChildren(tooltipContent(token.record, token.backtracked, onChoose));
    this.tooltip.hidden = false;
    const box = target.getBoundingClientRect();
    const rootBox = this.root.getBoundingClientRect();
    const left = Math.max(0, Math.min(box.left - rootBox.left, rootBox.width - this.tooltip.offsetWidth));
    this.tooltip.style.left = `${left}px`;
    this.tooltip.style.top = `${box.bottom - rootBox.top + 4}px`;
  }

  /** Ask the kernel for more about a token whose tooltip is pinned (`rudder.token_detail`). */
  setDetailAsker(asker: ((nodeId: number, tokenIndex: number) => void) | null): void {
    this.detailAsker = asker;
  }

  /** The kernel's detail of a token: shown if its tooltip is still the pinned one. */
  showDetail(detail: TokenDetailRecord): void {
    const shown = this.shownToken;
    if (!this.pinned || shown === null) return;
    if (shown.nodeId !== detail.node_id || shown.tokenIndex !== detail.token_index) return;
    // The detail's twenty likeliest, unconstrained and allowed, replace the streamed ones.
    const record = {...shown.record, top: detail.candidates, top_allowed: detail.top_allowed};
    const more = {rows: detail.candidates.length, allowedCount: detail.allowed_count};
    this.tooltip.replaceChildren(tooltipContent(record, shown.backtracked, shown.onChoose, more));
  }

  private hideTooltip(): void {
    if (!this.pinned) this.tooltip.hidden = true;
  }

  // -- explored branches --------------------------------------------------------------------

  /** Each explored branch beside the program: where it left the original, then its text. */
  private updateBranches(state: RunState): void {
    // A branch the program went on from is on the main path already.
    const explored = exploredNodes(state).filter((node) => !this.shownPath.includes(node.record.id));
    const key = explored.map((node) => `${node.record.id}:${node.revision}:${node.tokens.length}`).join(",");
    if (key === this.branchesKey) return;
    this.branchesKey = key;
    this.branches.replaceChildren(
      ...explored.map((node) => {
        const parts = pathCuts(state, node.record.id);
        const text = this.pieceElements(decodeRun(partPieces(parts[parts.length - 1]), new RunText(), true));
        return branchBox(state, node, text);
      }),
    );
  }

  // -- metrics ------------------------------------------------------------------------------

  private updateMetrics(state: RunState): void {
    const metrics = metricsOf(state);
    const key = JSON.stringify(metrics);
    if (key === this.metricsKey) return;
    this.metricsKey = key;
    this.metrics.replaceChildren(
      ...metrics.map((metric) => {
        const item = element("span", `rd-metric rd-metric-${metric.key}`);
        item.title = metric.description;
        const value = element("span", "rd-metric-value", visibleText(metric.value));
        item.append(element("span", "rd-metric-label", metric.label), value);
        return item;
      }),
    );
  }
}
