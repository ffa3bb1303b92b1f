import {describe, expect, it} from "vitest";

import widget, {MAX_HELD, Store, stores} from "../src/widget";
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
