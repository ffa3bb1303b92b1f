import {describe, expect, it} from "vitest";

import widget, {KERNEL_GONE, MAX_HELD, Store, kernelGoneAnswer, kernelHolds, stores} from "../src/widget";
import {Stream, text} from "./messages";

/** The model anywidget hands the module: traits, and the kernel's custom messages. */
class FakeModel {
  readonly handlers = new Map<string, Set<(...args: any[]) => void>>();

  constructor(private readonly traits: Record<string, unknown>) {}

  get(name: string): unknown {
    return this.traits[name];
  }

  on(event: string, callback: (...args: any[]) => void): void {
    if (!this.handlers.has(event)) this.handlers.set(event, new Set());
    this.handlers.get(event)?.add(callback);
  }

  off(event: string, callback: (...args: any[]) => void): void {
    this.handlers.get(event)?.delete(callback);
  }

  send(): void {}

  widget_manager?: {get_model(modelId: string): Promise<{comm_live?: boolean}>};

  fromKernel(json: string): void {
    for (const callback of this.handlers.get("msg:custom") ?? []) callback({rudder: "messages", json});
  }
}

describe("the widget module's stores", () => {
  it("keeps a model's messages until the model is closed, then forgets the store", () => {
    const model = new FakeModel({run_id: "cell-7", _final: ""});
    const cleanup = widget.initialize({model});
    const stream = new Stream("cell-7");
    model.fromKernel(JSON.stringify([stream.runStarted(), stream.node(1, null, {entries: [text("hi")]})]));
    expect(stores.get("cell-7")?.size).toBe(2);

    cleanup();
    expect(stores.has("cell-7")).toBe(false);
    expect(model.handlers.get("msg:custom")?.size).toBe(0); // nothing left listening
  });

  it("holds at most MAX_HELD messages: the older half goes, a later view asks the kernel", () => {
    const store = new Store(new FakeModel({run_id: "long", _final: ""}));
    const stream = new Stream("long");
    const batch = Array.from({length: MAX_HELD + 1}, () => stream.status(null, "idle"));
    store.add(batch);
    expect(store.size).toBeLessThanOrEqual(MAX_HELD);
    expect(store.size).toBeGreaterThanOrEqual(MAX_HELD / 2);
    const fromStart = store.after(-1);
    expect(fromStart.complete).toBe(false); // the start was dropped: the kernel is asked
    const last = batch[batch.length - 1].seq;
    expect(fromStart.messages[fromStart.messages.length - 1].seq).toBe(last);
    expect(store.after(last - 10)).toMatchObject({complete: true});
  });
});

describe("whether a kernel can answer a request", () => {
  const managed = (models: Record<string, {comm_live: boolean}>) => {
    const model = new FakeModel({run_id: "cell-1", _comm_id: "m1"});
    model.widget_manager = {
      get_model: async (modelId: string) => {
        const found = models[modelId];
        if (found === undefined) throw new Error("widget model not found");
        return found;
      },
    };
    return model;
  };

  it("asks the widget manager whether the model still has its comm", async () => {
    expect(await kernelHolds(managed({m1: {comm_live: true}}))).toBe(true);
    // Restored from a saved notebook: a new kernel, or none, never made this model.
    expect(await kernelHolds(managed({m1: {comm_live: false}}))).toBe(false);
  });

  it("sends the request where it cannot tell (no manager, an unknown model, no id)", async () => {
    expect(await kernelHolds(managed({}))).toBe(true);
    expect(await kernelHolds(new FakeModel({run_id: "cell-1", _comm_id: "m1"}))).toBe(true);
    expect(await kernelHolds(new FakeModel({run_id: "cell-1"}))).toBe(true);
  });

  it("answers a request itself, as an error that says a live kernel is needed", () => {
    const common = {v: 1 as const, seq: 3, run_id: "cell-1", request_id: 7, node_id: 2, token_index: 0};
    expect(kernelGoneAnswer({...common, type: "explore_request", token_id: 42})).toEqual({
      v: 1, run_id: "cell-1", request_id: 7, type: "explore_answer", status: "error",
      branch_node_id: null, error: KERNEL_GONE,
    });
    expect(kernelGoneAnswer({...common, type: "detail_request"})).toMatchObject({
      type: "detail_answer", status: "error", detail: null, error: KERNEL_GONE,
    });
    expect(KERNEL_GONE).toContain("needs a live kernel");
  });
});
