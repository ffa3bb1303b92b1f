// The page `rudder view` serves: a store's runs (list and search), one run in the view the
// widget shows, two runs side by side with their differences marked, and runs still being
// written, polled as they grow. It reads the server's JSON API with relative URLs, so a
// server that puts a token in its path needs nothing more here. A token's allowed
// candidates are clickable: the server explores from there on the model `rudder view
// --model` attached (or says how to attach one), and the branch comes in the run's messages.

import clientCss from "./style.css?inline";
import viewerCss from "./viewer.css?inline";
import exploreCss from "./explore.css?inline";
import type {ServerMessage} from "./messages";
import {applyMessages, createRunState} from "./state";
import type {RunState} from "./state";
import {RunViewElement} from "./view";
import {element} from "./dom";
import {capturesOf, comparableTexts, differences, differingCaptures} from "./compare";
import {count, seconds, tokenLabel} from "./format";
import type {ExploreChoice} from "./explore";

/** A run as `api/runs` lists it (`RunSummary` on the Python side). */
export interface RunSummary {
  id: string;
  name: string;
  status: "running" | "done" | "error" | "interrupted";
  started_at: number | null;
  finished_at: number | null;
  error: string | null;
  usage: {output_tokens?: number; prompt_tokens?: number; total_s?: number};
  model: string;
  captures: Record<string, string>;
  messages: number;
  bytes: number;
}

const POLL_MS = 500;
const LIST_REFRESH_MS = 2000;
const CAPTURE_CHARS = 60;

async function getJson<T>(url: string): Promise<T> {
  const response = await fetch(url, {cache: "no-store"});
  if (!response.ok) throw new Error(`${response.status}: ${await response.text()}`);
  return (await response.json()) as T;
}

const runUrl = (id: string) => `api/runs/${encodeURIComponent(id)}`;

function decodeSafely(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text; // a hand-edited URL with a stray %: the id as written
  }
}

function shorten(text: string, chars: number): string {
  return text.length > chars ? `${text.slice(0, chars - 1)}…` : text;
}

function when(time: number | null): string {
  if (time === null) return "";
  const date = new Date(time * 1000);
  const two = (value: number) => String(value).padStart(2, "0");
  const day = `${date.getFullYear()}-${two(date.getMonth() + 1)}-${two(date.getDate())}`;
  return `${day} ${two(date.getHours())}:${two(date.getMinutes())}:${two(date.getSeconds())}`;
}

/** One run followed from the store: its state, its view, and polling while it runs. */
class RunPane {
  readonly state: RunState;
  readonly view: RunViewElement;
  readonly element: HTMLElement;
  private timer = 0;
  private stopped = false;

  constructor(
    readonly runId: string,
    dark: boolean,
    private readonly changed: () => void,
  ) {
    this.state = createRunState(runId);
    this.element = element("section", "rv-pane");
    this.element.dataset.run = runId;
    this.view = new RunViewElement(this.element);
    this.view.setTheme(dark);
    this.view.setExplorer((choice) => void this.explore(choice));
    void this.poll();
  }

  get finished(): boolean {
    return this.state.run !== null && this.state.run.status !== "running";
  }

  private async poll(): Promise<void> {
    if (this.stopped) return;
    try {
      await this.fetchNew();
    } catch (error) {
      this.element.dataset.error = String(error);
    }
    if (!this.finished) this.timer = window.setTimeout(() => void this.poll(), POLL_MS);
    else this.element.dataset.complete = "true";
  }

  /** The run's messages the pane has not seen yet, applied. */
  private async fetchNew(): Promise<void> {
    const fresh = await getJson<ServerMessage[]>(`${runUrl(this.runId)}/messages?after=${this.state.lastSeq}`);
    if (this.stopped || fresh.length === 0) return;
    applyMessages(this.state, fresh);
    this.view.update(this.state);
    this.element.dataset.lastSeq = String(this.state.lastSeq);
    this.changed();
  }

  /** Ask the server to explore from a token; the branch is added to the stored run. */
  private async explore(choice: ExploreChoice): Promise<void> {
    const what = `${tokenLabel(choice.text, null)} at token ${choice.tokenIndex}`;
    this.view.setExploreStatus(`exploring with ${what}: the model is running`, "pending");
    try {
      const response = await fetch(`${runUrl(this.runId)}/explore`, {
        method: "POST",
        cache: "no-store",
        headers: {"Content-Type": "application/json"},
        body: JSON.stringify({node_id: choice.nodeId, token_index: choice.tokenIndex, token_id: choice.tokenId}),
      });
      const answer = (await response.json()) as {branch_node_id?: number; error?: string};
      if (!response.ok || answer.branch_node_id === undefined) {
        this.view.setExploreStatus(`could not explore: ${answer.error ?? response.status}`, "error");
        return;
      }
      await this.fetchNew();
      this.view.setExploreStatus(`explored with ${what}`, "done");
    } catch (error) {
      this.view.setExploreStatus(`could not explore: ${String(error)}`, "error");
    }
  }

  stop(): void {
    this.stopped = true;
    window.clearTimeout(this.timer);
  }
}

class Viewer {
  private readonly list: HTMLElement;
  private readonly main: HTMLElement;
  private readonly search: HTMLInputElement;
  private readonly compareButton: HTMLButtonElement;
  private readonly chosen = new Set<string>();
  private panes: RunPane[] = [];
  private query = "";
  private listTimer = 0;
  private searchTimer = 0;
  private readonly dark = window.matchMedia?.("(prefers-color-scheme: dark)").matches ?? false;

  constructor(root: HTMLElement) {
    root.className = "rv";
    root.dataset.theme = this.dark ? "dark" : "light";
    const header = element("header", "rv-header");
    const title = element("a", "rv-title", "rudder runs");
    title.href = "#";
    this.search = element("input", "rv-search");
    this.search.type = "search";
    this.search.placeholder = "search names, models, captures, text";
    this.search.setAttribute("aria-label", "search runs");
    this.search.addEventListener("input", () => {
      window.clearTimeout(this.searchTimer);
      this.searchTimer = window.setTimeout(() => {
        this.query = this.search.value;
        void this.refreshList();
      }, 200);
    });
    this.compareButton = element("button", "rv-compare", "compare 2 runs");
    this.compareButton.disabled = true;
    this.compareButton.addEventListener("click", () => {
      location.hash = `compare=${[...this.chosen].map(encodeURIComponent).join(",")}`;
    });
    header.append(title, this.search, this.compareButton);
    this.list = element("nav", "rv-list");
    this.main = element("main", "rv-main");
    root.append(header, element("div", "rv-body"));
    root.lastElementChild!.append(this.list, this.main);
    window.addEventListener("hashchange", () => this.route());
    void this.refreshList();
    this.route();
  }

  // -- the list -------------------------------------------------------------------------------

  private async refreshList(): Promise<void> {
    window.clearTimeout(this.listTimer);
    const query = this.query;
    try {
      const runs = await getJson<RunSummary[]>(`api/runs?q=${encodeURIComponent(query)}`);
      if (query === this.query) this.showList(runs);
    } catch (error) {
      this.list.replaceChildren(element("p", "rv-error", String(error)));
    }
    this.listTimer = window.setTimeout(() => void this.refreshList(), LIST_REFRESH_MS);
  }

  private showList(runs: RunSummary[]): void {
    const table = element("table", "rv-runs");
    const head = element("tr", "");
    for (const label of ["", "run", "status", "tokens", "captures"]) {
      head.append(element("th", `rv-col-${label || "pick"}`, label));
    }
    table.append(head);
    for (const run of runs) table.append(this.runRow(run));
    const counted = element("p", "rv-count", `${runs.length} run${runs.length === 1 ? "" : "s"}${this.query ? ` matching “${this.query}”` : ""}`);
    this.list.replaceChildren(counted, table);
    this.list.dataset.query = this.query;
    this.list.dataset.loaded = "true";
  }

  private runRow(run: RunSummary): HTMLElement {
    const row = element("tr", `rv-run rv-status-${run.status}`);
    row.dataset.run = run.id;
    const pick = element("input", "rv-pick");
    pick.type = "checkbox";
    pick.checked = this.chosen.has(run.id);
    pick.setAttribute("aria-label", `choose ${run.name} to compare`);
    pick.addEventListener("click", (event) => event.stopPropagation());
    pick.addEventListener("change", () => {
      if (pick.checked) this.chosen.add(run.id);
      else this.chosen.delete(run.id);
      this.compareButton.disabled = this.chosen.size !== 2;
    });
    const pickCell = element("td", "");
    pickCell.append(pick);
    const usage = run.usage;
    const tokens = `${count(usage.output_tokens ?? 0)} out\n${count(usage.prompt_tokens ?? 0)} in`;
    const captures = element("td", "rv-captures");
    for (const [name, value] of Object.entries(run.captures)) {
      const item = element("span", "rv-capture", `${name}=${shorten(value, CAPTURE_CHARS)}`);
      item.title = `${name} = ${value}`;
      captures.append(item);
    }
    const status = element("td", "rv-status", run.status);
    if (run.error) status.title = run.error;
    const name = element("td", "");
    name.append(element("div", "rv-name", run.name), element("div", "rv-time", when(run.started_at)));
    if (run.model) name.append(element("div", "rv-model", run.model));
    row.append(
      pickCell,
      name,
      status,
      element("td", "rv-tokens", tokens),
      captures,
    );
    row.title = `${run.name} · ${run.id} · ${count(run.messages)} messages`;
    row.addEventListener("click", () => {
      location.hash = `run=${encodeURIComponent(run.id)}`;
    });
    return row;
  }

  // -- the main panel -------------------------------------------------------------------------

  private route(): void {
    for (const pane of this.panes) pane.stop();
    this.panes = [];
    const hash = location.hash.slice(1);
    const [kind, value = ""] = hash.split("=", 2);
    const ids = value.split(",").filter(Boolean).map(decodeSafely);
    this.main.replaceChildren();
    this.main.dataset.view = kind === "run" || kind === "compare" ? kind : "none";
    if (kind === "run" && ids.length === 1) this.showRun(ids[0]);
    else if (kind === "compare" && ids.length === 2) this.showComparison(ids[0], ids[1]);
    else this.main.append(element("p", "rv-hint", "Choose a run, or tick two and compare them."));
  }

  private showRun(id: string): void {
    const pane = new RunPane(id, this.dark, () => this.title(pane));
    this.panes = [pane];
    this.main.append(this.paneTitle(id), pane.element);
  }

  private paneTitle(id: string): HTMLElement {
    const title = element("h2", "rv-pane-title", id);
    title.dataset.run = id;
    const exported = element("a", "rv-export", "export page");
    exported.href = `export/${encodeURIComponent(id)}`;
    exported.setAttribute("download", `${id}.html`);
    const heading = element("div", "rv-pane-heading");
    heading.append(title, exported);
    return heading;
  }

  private title(pane: RunPane): void {
    const run = pane.state.run;
    const title = this.main.querySelector<HTMLElement>(`.rv-pane-title[data-run="${CSS.escape(pane.runId)}"]`);
    if (run !== null && title !== null) {
      const took = run.finished_at !== null && run.started_at !== null ? ` · ${seconds(run.finished_at - run.started_at)}` : "";
      title.textContent = `${run.name} · ${when(run.started_at)}${took}`;
    }
  }

  private showComparison(leftId: string, rightId: string): void {
    const summary = element("div", "rv-differences");
    const grid = element("div", "rv-compare-grid");
    const columns = [leftId, rightId].map((id) => {
      const column = element("div", "rv-column");
      column.append(this.paneTitle(id));
      grid.append(column);
      return column;
    });
    const update = () => {
      for (const pane of this.panes) this.title(pane);
      if (this.panes.length === 2) this.markDifferences(this.panes[0], this.panes[1], summary);
    };
    this.panes = [leftId, rightId].map((id) => new RunPane(id, this.dark, update));
    this.panes.forEach((pane, index) => columns[index].append(pane.element));
    this.main.append(summary, grid);
  }

  private markDifferences(left: RunPane, right: RunPane, summary: HTMLElement): void {
    const found = differences(comparableTexts(left.state), comparableTexts(right.state));
    const marked = [markPane(left, found.left), markPane(right, found.right)];
    const captures = differingCaptures(left.state, right.state);
    const table = element("table", "rv-capture-diff");
    const a = capturesOf(left.state);
    const b = capturesOf(right.state);
    const head = element("tr", "");
    head.append(element("th", "", "capture"), element("th", "", "left"), element("th", "", "right"));
    table.append(head);
    for (const name of new Set([...a.keys(), ...b.keys()])) {
      const row = element("tr", captures.has(name) ? "rd-diff" : "");
      row.dataset.capture = name;
      row.append(element("td", "", name), element("td", "", a.get(name) ?? "—"), element("td", "", b.get(name) ?? "—"));
      table.append(row);
    }
    const line = element(
      "p",
      "rv-difference-count",
      `${marked[0]} pieces of the left run and ${marked[1]} of the right differ; ${captures.size} capture${captures.size === 1 ? "" : "s"} differ${captures.size === 1 ? "s" : ""}`,
    );
    summary.replaceChildren(line, table);
    summary.dataset.left = String(marked[0]);
    summary.dataset.right = String(marked[1]);
    summary.dataset.complete = String(left.finished && right.finished);
  }
}

/** Mark the pane's text and token elements that differ; returns how many were marked. */
function markPane(pane: RunPane, differs: boolean[]): number {
  const shown = pane.view.root.querySelectorAll<HTMLElement>(".rd-text .rd-input, .rd-text .rd-token");
  if (shown.length !== differs.length) return differs.filter(Boolean).length;
  let marked = 0;
  shown.forEach((item, index) => {
    item.classList.toggle("rd-diff", differs[index]);
    if (differs[index]) marked++;
  });
  return marked;
}

const style = document.createElement("style");
style.textContent = clientCss + exploreCss + viewerCss;
document.head.append(style);
const viewer = new Viewer(document.getElementById("rudder-viewer") ?? document.body);
// For tests and for looking around in the browser's console.
(window as unknown as {rudderViewer: Viewer}).rudderViewer = viewer;
