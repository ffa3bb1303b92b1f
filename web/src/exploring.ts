// The client's side of exploring: a clicked candidate becomes an explore request to the
// kernel, shown as pending until its answer comes (the kernel answers when it is idle; the
// branch itself arrives in the run's stream). Without a kernel (an exported page) clicking
// says that a live kernel is needed.

import type {ClientMessage, KernelAnswer} from "./messages";
import type {ExploreChoice} from "./explore";
import {tokenLabel} from "./format";
import type {RunViewElement} from "./view";

export const NEEDS_KERNEL =
  "Exploring needs a live kernel: open the notebook with its kernel running and run the cell again.";

export class Exploring {
  private nextRequest = 1;
  private readonly pending = new Map<number, ExploreChoice>();

  constructor(
    private readonly view: RunViewElement,
    private readonly send: ((message: ClientMessage) => void) | null,
    private readonly nextSeq: () => number,
    private readonly runId: () => string | null,
  ) {
    view.setExplorer((choice) => this.explore(choice));
    if (send !== null) view.setDetailAsker((nodeId, tokenIndex) => this.detail(nodeId, tokenIndex));
  }

  /** Ask for the detail of a pinned token (more candidates, the allowed-set size). */
  detail(nodeId: number, tokenIndex: number): void {
    const runId = this.runId();
    if (this.send === null || runId === null) return;
    this.send({
      type: "detail_request",
      v: 1,
      seq: this.nextSeq(),
      run_id: runId,
      request_id: this.nextRequest++,
      node_id: nodeId,
      token_index: tokenIndex,
    });
  }

  explore(choice: ExploreChoice): void {
    const runId = this.runId();
    if (this.send === null || runId === null) {
      this.view.setExploreStatus(NEEDS_KERNEL, "error");
      return;
    }
    const requestId = this.nextRequest++;
    this.pending.set(requestId, choice);
    this.send({
      type: "explore_request",
      v: 1,
      seq: this.nextSeq(),
      run_id: runId,
      request_id: requestId,
      node_id: choice.nodeId,
      token_index: choice.tokenIndex,
      token_id: choice.tokenId,
    });
    this.view.setExploreStatus(
      `exploring with ${tokenLabel(choice.text, null)} at token ${choice.tokenIndex}: pending until the kernel is idle (${NEEDS_KERNEL.split(":")[0].toLowerCase()})`,
      "pending",
    );
  }

  answered(answer: KernelAnswer): void {
    if (answer.type === "detail_answer") {
      if (answer.detail !== null) this.view.showDetail(answer.detail);
      return;
    }
    const choice = this.pending.get(answer.request_id);
    if (choice === undefined) return;
    this.pending.delete(answer.request_id);
    if (answer.status === "done") {
      this.view.setExploreStatus(`explored with ${tokenLabel(choice.text, null)} at token ${choice.tokenIndex}`, "done");
    } else {
      this.view.setExploreStatus(`could not explore: ${answer.error ?? "unknown error"}`, "error");
    }
  }
}
