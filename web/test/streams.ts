// The recorded streams of fixtures/streams.json (written by fixtures/make_fixtures.py):
// real runs of small programs on models.Mock, with what the Python RunView shows of each.

import type {ServerMessage} from "../src/messages";
import data from "./fixtures/streams.json";

export interface RecordedStream {
  messages: ServerMessage[];
  /** `RunView.text()` of the whole stream. */
  text: string;
  /** `RunView.text(node_id)` for every node of the stream. */
  node_texts: Record<string, string>;
  /** `RunView.text()` after each message. */
  prefix_texts: string[];
}

export const streams = data as unknown as Record<string, RecordedStream>;
