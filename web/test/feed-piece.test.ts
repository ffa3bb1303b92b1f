import {describe, expect, it} from "vitest";

import {RunText, feedPiece, pieceBytes} from "../src/pieces";
import type {Piece} from "../src/pieces";
import {token} from "./messages";

/** What `run.feed` of each piece's bytes shows, on a run of its own. */
function byFeeding(pieces: Piece[], pending: number[] = []): string[] {
  const run = new RunText(Uint8Array.from(pending));
  return pieces.map((piece) => run.feed(pieceBytes(piece)));
}

function byFeedPiece(pieces: Piece[], pending: number[] = []): string[] {
  const run = new RunText(Uint8Array.from(pending));
  return pieces.map((piece) => feedPiece(run, piece));
}

const tokenPiece = (text: string, bytes?: number[]): Piece => {
  const record = token(text, bytes === undefined ? {} : {bytes});
  return {kind: "token", token: record, backtracked: false, text};
};

describe("feedPiece", () => {
  it("shows what feeding the piece's bytes shows, for whole and split characters", () => {
    const pieces: Piece[] = [
      {kind: "text", text: "Say: <|im_start|> </script> \x1b[31m"},
      tokenPiece("日本"),
      tokenPiece("🎉"),
      tokenPiece("\ufffd", [0xe6]),
      tokenPiece("\ufffd", [0x9d]),
      tokenPiece("\ufffd", [0xb1]),
      tokenPiece(" café"),
      {kind: "text", text: "cut", bytes: Uint8Array.from([0x63, 0x75])},
    ];
    expect(byFeedPiece(pieces)).toEqual(byFeeding(pieces));
    expect(byFeedPiece(pieces)).toEqual(["Say: <|im_start|> </script> \x1b[31m", "日本", "🎉", "", "", "東", " café", "cu"]);
  });

  it("goes on from bytes that wait before whole text", () => {
    const pieces: Piece[] = [tokenPiece("\ufffd", [0xa5]), tokenPiece("ab")];
    expect(byFeedPiece(pieces, [0xe6, 0x97])).toEqual(byFeeding(pieces, [0xe6, 0x97]));
    expect(byFeedPiece(pieces, [0xe6])).toEqual(byFeeding(pieces, [0xe6]));
  });

  it("shows a lone surrogate as UTF-8 would carry it", () => {
    const pieces: Piece[] = [{kind: "text", text: "a\ud800b"}];
    expect(byFeedPiece(pieces)).toEqual(byFeeding(pieces));
    expect(byFeedPiece(pieces)).toEqual(["a\ufffdb"]);
  });

  it("shows nothing for labels and placeholders", () => {
    expect(feedPiece(new RunText(), {kind: "role_open", role: "user"})).toBe("");
    expect(feedPiece(new RunText(), {kind: "hidden", chars: 3})).toBe("");
  });
});
