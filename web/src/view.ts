// The view of one run: a toolbar with the legend and colour choices, the text of the run
// (each token a span coloured by type, probability or latency), role labels, explored
// branches, the tooltip and the metrics bar.
//
// The run's text and each branch's are shown incrementally, in chunks laid out once
// (path_text.ts, chunks.ts). Every piece of untrusted text reaches the DOM as a text node,
// never as markup, and with its controls and bidirectional overrides shown as escapes
// (`visibleText`).

import type {CandidateRecord, TokenDetailRecord, TokenRecord} from "./protocol";
import type {RunState} from "./state";
import type {Piece} from "./pieces";
import {pathCuts, runEnds} from "./pieces";
import {latencyScale, shownText, visibleText} from "./format";
import {metricsOf, runStatus} from "./metrics";
import {element} from "./dom";
import type {ShownPiece} from "./path_text";
import {PathText} from "./path_text";
import {tooltipContent} from "./tooltip";
import type {Explorer} from "./explore";
import {exploredNodes, mainNodeId, outputIndex} from "./explore";
import type {BranchBox} from "./branches";
import {branchShell, fillBranch} from "./branches";

export type BackgroundMode = "type" | "probability" | "latency" | "none";
export type UnderlineMode = "probability" | "latency" | "none";

export interface ViewOptions {
  background: BackgroundMode;
  underline: UnderlineMode;
}

export const DEFAULT_OPTIONS: ViewOptions = {background: "type", underline: "probability"};

export class RunViewElement {
  readonly root: HTMLElement;
  private readonly text: PathText;
  private readonly metrics: HTMLElement;
  private readonly tooltip: HTMLElement;
  /** Each token span's piece (its record, and whether it was taken back). A map rather than
   * an attribute on each of thousands of spans, which cost more to set. */
  private readonly spanPieces = new WeakMap<Element, TokenPiece>();
  private metricsKey = "";
  private readonly branches: HTMLElement;
  /** Each explored branch's box and text, by its node. */
  private branchViews = new Map<number, {parts: BranchBox; text: PathText}>();
  private state: RunState | null = null;
  /** The revision of the state the view last showed (`update`). */
  shownRevision = -1;
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
    const text = element("div", "rd-text");
    text.setAttribute("role", "document");
    this.text = new PathText(text, (piece) => this.shownPiece(piece));
    this.metrics = element("div", "rd-metrics");
    this.tooltip = element("div", "rd-tooltip");
    this.tooltip.hidden = true;
    this.branches = element("div", "rd-branches");
    // Explored branches beside the program (explore.css).
    const beside = element("div", "rd-beside");
    beside.append(text, this.branches);
    this.root.append(beside, this.metrics, this.tooltip);
    this.applyOptions();
    for (const area of [text, this.branches]) {
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
    this.text.show(parts, runEnds(parts, last !== undefined && last.state === "generating"));
    this.root.dataset.status = runStatus(state);
    this.updateBranches(state);
    this.updateMetrics(state);
    this.shownRevision = state.revision;
  }

  /** A piece's text, and its element, made when its chunk is built (a token's span) or at
   * once (other pieces). */
  private shownPiece(piece: Piece): ShownPiece {
    switch (piece.kind) {
      case "text":
        return new Shown(piece, shownText(piece.text), false, this);
      case "token":
        return new Shown(piece, shownText(piece.text), true, this);
      case "role_open":
      case "role_close":
        return new Shown(piece, "", false, this);
      case "hidden":
        return new Shown(piece, piece.chars === null ? "[hidden]" : `[hidden: ${piece.chars} characters]`, false, this);
    }
  }

  /** A piece's element (`Shown.element`, once per piece). */
  pieceElement(piece: Piece, text: string): HTMLElement {
    switch (piece.kind) {
      case "text":
        return element("span", "rd-input", text);
      case "token":
        return this.tokenElement(piece, text);
      case "role_open": {
        const label = element("span", "rd-role", visibleText(piece.role));
        label.dataset.role = piece.role;
        return label;
      }
      case "role_close":
        return element("span", "rd-role-end");
      case "hidden":
        return element("span", "rd-hidden", text);
    }
  }

  private tokenElement(piece: TokenPiece, text: string): HTMLElement {
    const token = piece.token;
    // Probability and latency as one of LEVELS classes (style.css), not inline styles:
    // spans alike share their style, and nothing per span is parsed.
    let className = `rd-token rd-src-${token.source} rd-l${level(latencyScale(token.latency_s))}`;
    className += token.prob === null ? " rd-no-prob" : ` rd-p${level(token.prob)}`;
    if (piece.backtracked) className += " rd-backtracked";
    const span = element("span", className, text);
    this.spanPieces.set(span, piece);
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
    const piece = target === null ? undefined : this.spanPieces.get(target);
    if (target === null || piece === undefined) return;
    const {token: record, backtracked} = piece;
    const nodeId = Number(target.closest<HTMLElement>("[data-node]")?.dataset.node);
    const node = this.state?.nodes.get(nodeId);
    const index = node === undefined ? null : outputIndex(node, record);
    const explorer = this.explorer;
    const offer = explorer !== null && index !== null && record.source === "generated" && !backtracked;
    const onChoose = offer
      ? (candidate: CandidateRecord) => {
          this.unpin();
          this.hideTooltip();
          explorer({nodeId, tokenIndex: index, tokenId: candidate.id, text: candidate.text});
        }
      : null;
    this.shownToken =
      onChoose === null || index === null ? null : {nodeId, tokenIndex: index, record, backtracked, onChoose};
    this.tooltip.replaceChildren(tooltipContent(record, backtracked, onChoose));
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

  /** Each explored branch beside the program: where it left the original, then its text,
   * shown as the program's is (chunks, only what changed redone). */
  private updateBranches(state: RunState): void {
    // A branch the program went on from is on the main path already.
    const onPath = new Set(this.text.nodeIds);
    const explored = exploredNodes(state).filter((node) => !onPath.has(node.record.id));
    const ids = new Set(explored.map((node) => node.record.id));
    for (const [id, branch] of this.branchViews) {
      if (ids.has(id)) continue;
      branch.parts.box.remove();
      this.branchViews.delete(id);
    }
    explored.forEach((node, index) => {
      const id = node.record.id;
      let branch = this.branchViews.get(id);
      if (branch === undefined) {
        const parts = branchShell(id);
        branch = {parts, text: new PathText(parts.body, (piece) => this.shownPiece(piece))};
        this.branchViews.set(id, branch);
      }
      const box = branch.parts.box;
      if (this.branches.children[index] !== box) this.branches.insertBefore(box, this.branches.children[index] ?? null);
      // The branch's own node, its text on its own (not going on from the original's).
      const parts = pathCuts(state, id).slice(-1);
      branch.text.show(parts, runEnds(parts, node.state === "generating"));
      fillBranch(branch.parts, state, node);
    });
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

type TokenPiece = Extract<Piece, {kind: "token"}>;

/** A piece as shown: its element is made by the view on the first call, once (an object
 * per piece rather than closures: a run makes one for each of its tokens). */
class Shown implements ShownPiece {
  private made: HTMLElement | null = null;

  constructor(
    readonly piece: Piece,
    readonly text: string,
    readonly lazy: boolean,
    private readonly view: RunViewElement,
  ) {}

  element(): HTMLElement {
    return (this.made ??= this.view.pieceElement(this.piece, this.text));
  }
}

/** Steps of the probability and latency colour scales (`.rd-p0` to `.rd-p20` in style.css). */
export const LEVELS = 20;

/** A value of 0..1 as its step on the colour scales. */
export function level(value: number): number {
  return value > 0 ? Math.round(Math.min(1, value) * LEVELS) : 0;
}
