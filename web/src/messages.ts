// The messages that cross the iframe's boundary: the protocol's, wrapped in an envelope
// that says which side sent what. Anything else posted to a window is ignored.

import type {
  ClientReady,
  DetailAnswer,
  DetailRequest,
  ExploreAnswer,
  ExploreRequest,
  ReplayRequest,
  RudderMessage,
} from "./protocol";

/** What clients send: about the run's stream, or requests the kernel answers. */
export type ClientMessage = ClientReady | ReplayRequest | ExploreRequest | DetailRequest;
/** The kernel's answer to one request (outside the run's stream). */
export type KernelAnswer = ExploreAnswer | DetailAnswer;
/** A message of a run's stream, from the kernel. */
export type ServerMessage = Exclude<RudderMessage, ClientMessage | KernelAnswer>;

export const ENVELOPE = "rudder-view";

/** From the host page to the client in the iframe. */
export type HostToClient =
  | {envelope: typeof ENVELOPE; kind: "messages"; messages: ServerMessage[]}
  | {envelope: typeof ENVELOPE; kind: "theme"; dark: boolean}
  | {envelope: typeof ENVELOPE; kind: "answer"; answer: KernelAnswer};

/** From the client in the iframe to the host page. */
export type ClientToHost =
  | {envelope: typeof ENVELOPE; kind: "client"; message: ClientMessage}
  | {envelope: typeof ENVELOPE; kind: "resize"; height: number};

export function isEnvelope(data: unknown): data is {envelope: string; kind: string} {
  return (
    typeof data === "object" &&
    data !== null &&
    (data as {envelope?: unknown}).envelope === ENVELOPE &&
    typeof (data as {kind?: unknown}).kind === "string"
  );
}
