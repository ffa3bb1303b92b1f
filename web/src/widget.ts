// The notebook widget's module (anywidget): hosts the client page in a sandboxed iframe
// (`allow-scripts` only: it runs in an opaque origin and cannot reach the notebook) and
// relays messages both ways with postMessage.
//
// Every message the kernel sends for the widget's model is kept per model (ordered by
// seq), so that a view made later (the output re-rendered, the page reloaded) starts from
// all of it; a replay the client asks for is served from there when it can be, else
// asked of the kernel. When the run is done the kernel saves its messages in `_final`, so
// a saved notebook shows the output without a kernel.
//
// A store is bounded (a cell that loops for ever streams for ever): past `MAX_HELD`
// messages the older half is dropped, and a view that needs them asks the kernel, whose
// bounded history answers with a reset. A store goes when its model is closed (the cleanup
// `initialize` returns).

import type {ClientMessage, ClientToHost, HostToClient, KernelAnswer, ServerMessage} from "./messages";
import type {DetailRequest, ExploreRequest} from "./protocol";
import {ENVELOPE, isEnvelope} from "./messages";

interface Model {
  get(name: string): unknown;
  on(event: string, callback: (...args: any[]) => void): void;
  off(event: string, callback: (...args: any[]) => void): void;
  send(content: unknown): void;
  widget_manager?: {get_model?(modelId: string): Promise<{comm_live?: boolean}>};
}

interface KernelContent {
  rudder?: string;
  json?: string;
}

/** Messages a store holds at most (the kernel's bus holds as many of a run by default). */
export const MAX_HELD = 10_000;

export class Store {
  private bySeq = new Map<number, ServerMessage>();
  readonly listeners = new Set<(messages: ServerMessage[]) => void>();
  /** Views that wait for the kernel's answers to their requests. */
  readonly answerListeners = new Set<(answer: KernelAnswer) => void>();

  constructor(model: Model) {
    const saved = model.get("_final");
    if (typeof saved === "string" && saved) this.add(JSON.parse(saved) as ServerMessage[]);
  }

  add(messages: ServerMessage[]): void {
    for (const message of messages) {
      if (message.type === "reset") this.bySeq.clear();
      else this.bySeq.set(message.seq, message);
    }
    if (this.bySeq.size > MAX_HELD) {
      const seqs = [...this.bySeq.keys()].sort((a, b) => a - b);
      for (const seq of seqs.slice(0, seqs.length - MAX_HELD / 2)) this.bySeq.delete(seq);
    }
    for (const listener of this.listeners) listener(messages);
  }

  /** The held messages after `afterSeq`, in order, and whether they follow on without a hole. */
  after(afterSeq: number): {messages: ServerMessage[]; complete: boolean} {
    const seqs = [...this.bySeq.keys()].filter((seq) => seq > afterSeq).sort((a, b) => a - b);
    let expected = afterSeq + 1;
    let complete = true;
    for (const seq of seqs) {
      if (seq !== expected) complete = false;
      expected = seq + 1;
    }
    return {messages: seqs.map((seq) => this.bySeq.get(seq) as ServerMessage), complete};
  }

  get size(): number {
    return this.bySeq.size;
  }

  /** Forgets the store: the model is closed, no view will show it again. */
  release: () => void = () => {};
}

// Stores are found by run id: anywidget hands `initialize` and each `render` a different
// proxy of the same model, so the model object cannot be the key. Run ids are unique.
export const stores = new Map<string, Store>();

function storeOf(model: Model): Store {
  const runId = String(model.get("run_id") ?? "");
  let store = stores.get(runId);
  if (store === undefined) {
    const made = new Store(model);
    stores.set(runId, made);
    const receive = (content: KernelContent) => {
      if (content?.rudder === "messages" && typeof content.json === "string") {
        made.add(JSON.parse(content.json) as ServerMessage[]);
      } else if (content?.rudder === "answer" && typeof content.json === "string") {
        const answer = JSON.parse(content.json) as KernelAnswer;
        for (const listener of made.answerListeners) listener(answer);
      }
    };
    model.on("msg:custom", receive);
    made.release = () => {
      model.off("msg:custom", receive);
      if (stores.get(runId) === made) stores.delete(runId);
    };
    store = made;
  }
  return store;
}

function darkTheme(): boolean {
  const body = document.body;
  if (body.dataset.jpThemeLight !== undefined) return body.dataset.jpThemeLight === "false";
  if (body.classList.contains("vscode-dark") || body.classList.contains("vscode-high-contrast")) {
    return true;
  }
  if (body.classList.contains("vscode-light")) return false;
  return window.matchMedia?.("(prefers-color-scheme: dark)").matches ?? false;
}

/** What a request answers when the kernel that made the run is gone. */
export const KERNEL_GONE =
  "exploring needs a live kernel: this output was saved with the notebook and the kernel that " +
  "made it is gone; run the cell again with a kernel to explore";

/** Whether the kernel that made this widget still holds it. A model restored from a saved
 * notebook has no comm (no kernel, or a new one that never made it) and what is sent to it
 * is dropped without a word, so a request would wait for ever. Only a model the manager
 * says has no live comm counts as gone: where the manager cannot tell (not ipywidgets',
 * or it cannot find the model), the request is sent. */
export async function kernelHolds(model: Model): Promise<boolean> {
  const modelId = model.get("_comm_id");
  const manager = model.widget_manager;
  if (typeof modelId !== "string" || !modelId || typeof manager?.get_model !== "function") return true;
  try {
    return (await manager.get_model(modelId)).comm_live !== false;
  } catch {
    return true;
  }
}

/** The answer to a request that no kernel will answer. */
export function kernelGoneAnswer(message: ExploreRequest | DetailRequest): KernelAnswer {
  const common = {v: 1 as const, run_id: message.run_id, request_id: message.request_id};
  return message.type === "explore_request"
    ? {...common, type: "explore_answer", status: "error", branch_node_id: null, error: KERNEL_GONE}
    : {...common, type: "detail_answer", status: "error", detail: null, error: KERNEL_GONE};
}

function sendToKernel(model: Model, message: ClientMessage): void {
  try {
    model.send({rudder: "client", message});
  } catch {
    // No kernel (a saved notebook opened alone): what the store holds is all there is.
  }
}

function render({model, el}: {model: Model; el: HTMLElement}): () => void {
  const store = storeOf(model);
  const iframe = document.createElement("iframe");
  iframe.setAttribute("sandbox", "allow-scripts");
  iframe.setAttribute("title", "rudder run view");
  iframe.style.cssText = "width: 100%; height: 80px; border: 0; display: block;";
  iframe.srcdoc = String(model.get("_page") ?? "");
  el.append(iframe);

  let ready = false;
  // Posted as JSON text: a string crosses postMessage at once, where the structured clone
  // of an object holding thousands of token records takes the client longer to read
  // (`event.data`) than to paint them.
  const toClient = (data: HostToClient) => iframe.contentWindow?.postMessage(JSON.stringify(data), "*");
  const forward = (messages: ServerMessage[]) => {
    if (ready) toClient({envelope: ENVELOPE, kind: "messages", messages});
  };
  const serve = (afterSeq: number, ask: ClientMessage) => {
    const held = store.after(afterSeq);
    if (held.messages.length) toClient({envelope: ENVELOPE, kind: "messages", messages: held.messages});
    if (!held.complete || store.size === 0) sendToKernel(model, ask);
  };
  const onWindowMessage = (event: MessageEvent) => {
    if (event.source !== iframe.contentWindow || !isEnvelope(event.data)) return;
    const data = event.data as ClientToHost;
    if (data.kind === "resize") {
      iframe.style.height = `${Math.max(40, Math.min(data.height, 4000))}px`;
    } else if (data.kind === "client") {
      const message = data.message;
      if (message.type === "client_ready") {
        ready = true;
        toClient({envelope: ENVELOPE, kind: "theme", dark: darkTheme()});
        serve(message.last_seq ?? -1, message);
      } else if (message.type === "replay_request") {
        serve(message.after_seq, message);
      } else {
        // Explore and detail requests: the kernel answers when it is idle, if it is there.
        void kernelHolds(model).then((live) => {
          if (live) sendToKernel(model, message);
          else if (ready) toClient({envelope: ENVELOPE, kind: "answer", answer: kernelGoneAnswer(message)});
        });
      }
    }
  };
  window.addEventListener("message", onWindowMessage);
  store.listeners.add(forward);
  const forwardAnswer = (answer: KernelAnswer) => {
    if (ready) toClient({envelope: ENVELOPE, kind: "answer", answer});
  };
  store.answerListeners.add(forwardAnswer);
  const themeWatch = new MutationObserver(() => {
    if (ready) toClient({envelope: ENVELOPE, kind: "theme", dark: darkTheme()});
  });
  themeWatch.observe(document.body, {attributes: true, attributeFilter: ["class", "data-jp-theme-light"]});
  return () => {
    window.removeEventListener("message", onWindowMessage);
    store.listeners.delete(forward);
    store.answerListeners.delete(forwardAnswer);
    themeWatch.disconnect();
    iframe.remove();
  };
}

export default {
  initialize({model}: {model: Model}) {
    // anywidget runs the returned cleanup when the model is closed.
    const store = storeOf(model);
    return () => store.release();
  },
  render,
};
