// The client page: the view of one run. It runs in a sandboxed iframe (the notebook
// widget) or alone (an exported file), and is fed protocol messages: inline, from a
// `<script id="rudder-data" type="application/json">` element (their tokens' candidates
// apart, in `rudder-candidates`: see CandidatesApart), and live, posted by the host
// page. It tells the host when it is ready and asks for a replay when it sees a hole.

import css from "./style.css?inline";
import exploreCss from "./explore.css?inline";
import type {ClientMessage, ClientToHost, HostToClient, ServerMessage} from "./messages";
import {ENVELOPE, isEnvelope} from "./messages";
import {CandidatesApart, applyMessages, createRunState} from "./state";
import type {RunState} from "./state";
import {RunViewElement} from "./view";
import {Exploring} from "./exploring";

export interface Client {
  readonly state: RunState;
  readonly view: RunViewElement;
  receive(messages: ServerMessage[]): void;
}

/** What the host posted (JSON text, see widget.ts), or null when it is not for us. */
function hostMessage(text: string): HostToClient | null {
  try {
    const data: unknown = JSON.parse(text);
    return isEnvelope(data) ? (data as HostToClient) : null;
  } catch {
    return null;
  }
}

export function startClient(root: HTMLElement): Client {
  const style = document.createElement("style");
  style.textContent = css + exploreCss;
  document.head.append(style);

  const state = createRunState();
  const view = new RunViewElement(root);
  view.setTheme(window.matchMedia?.("(prefers-color-scheme: dark)").matches ?? false);
  const embedded = window.parent !== window;
  let sent = 0;
  let replayAsked: number | null = null;
  let frame = 0;

  const post = (data: ClientToHost) => {
    if (embedded) window.parent.postMessage(data, "*");
  };
  const postClient = (message: ClientMessage) => post({envelope: ENVELOPE, kind: "client", message});

  // One render per frame, of every message received since the last. A frame costs what the
  // screen shows, not the run's length (chunks.ts builds only the chunks near the screen,
  // and the browser skips those away from it), so frames are not spaced out.
  const render = () => {
    frame = 0;
    view.update(state);
  };
  const schedule = () => {
    if (frame === 0) frame = requestAnimationFrame(render);
  };
  const receive = (messages: ServerMessage[]) => {
    applyMessages(state, messages);
    const after = state.wantsReplayAfter;
    if (after !== null && after !== replayAsked && state.runId !== null) {
      replayAsked = after;
      postClient({type: "replay_request", v: 1, seq: sent++, run_id: state.runId, after_seq: after});
    } else if (after === null) {
      replayAsked = null;
    }
    schedule();
  };

  const exploring = new Exploring(view, embedded ? postClient : null, () => sent++, () => state.runId);

  // The page's messages, and their tokens' candidates apart (given to the tokens after the
  // first frame, or when one is read first: see CandidatesApart).
  const inline = document.getElementById("rudder-data");
  if (inline?.textContent) {
    const messages = JSON.parse(inline.textContent) as ServerMessage[];
    const apart = document.getElementById("rudder-candidates")?.textContent;
    if (apart) state.candidatesApart = new CandidatesApart(apart, messages);
    receive(messages);
  }

  if (embedded) {
    window.addEventListener("message", (event: MessageEvent) => {
      if (event.source !== window.parent || typeof event.data !== "string") return;
      const data = hostMessage(event.data);
      if (data === null) return;
      if (data.kind === "messages") receive(data.messages);
      else if (data.kind === "theme") view.setTheme(data.dark);
      else if (data.kind === "answer") exploring.answered(data.answer);
    });
    // The host sizes the iframe to the page, the open tooltip included (it is positioned
    // out of the flow, so the body's size does not count it).
    let height = 0;
    const tooltip = root.querySelector<HTMLElement>(".rd-tooltip");
    const resize = () => {
      let next = document.documentElement.scrollHeight;
      if (tooltip !== null && !tooltip.hidden) {
        next = Math.max(next, tooltip.getBoundingClientRect().bottom + window.scrollY + 4);
      }
      next = Math.ceil(next);
      if (next !== height) {
        height = next;
        post({envelope: ENVELOPE, kind: "resize", height});
      }
    };
    const observer = new ResizeObserver(resize);
    observer.observe(document.body);
    if (tooltip !== null) {
      observer.observe(tooltip);
      // Showing or hiding the tooltip toggles `hidden`, which a ResizeObserver may not see.
      new MutationObserver(resize).observe(tooltip, {attributes: true, attributeFilter: ["hidden", "style"]});
    }
    postClient({
      type: "client_ready",
      v: 1,
      seq: sent++,
      run_id: state.runId,
      last_seq: state.lastSeq >= 0 ? state.lastSeq : null,
    });
  }
  render();
  const candidates = state.candidatesApart;
  if (candidates !== null) requestAnimationFrame(() => setTimeout(() => candidates.give(state.table)));
  return {state, view, receive};
}

const client = startClient(document.getElementById("rudder-root") ?? document.body);
// For tests and for looking around in the browser's console.
(window as unknown as {rudder: Client}).rudder = client;
