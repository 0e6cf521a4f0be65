// One blocking HTTP request over `wasi:http/outgoing-handler` (QuickJS has no `fetch`). The broker
// lets it through only to the hosts listed in the operator's `mapper.allowed_hosts`.

import { handle } from "wasi:http/outgoing-handler@0.2.12";
import { Fields, OutgoingBody, OutgoingRequest } from "wasi:http/types@0.2.12";

import { utf8Decode, utf8Encode } from "./lib/bytes.js";

/** The largest response body read, in bytes; the power API answers a few bytes of JSON. */
const MAX_BODY_BYTES = 64 * 1024;

/**
 * Sends `method url` with an empty body and waits for the whole response.
 * @param {"GET" | "POST"} method
 * @param {string} url an absolute `http://` or `https://` URL
 * @returns {{status: number, body: string}}
 * @throws {string | object} a transport error: a text, or the WIT `error-code` variant
 */
export function httpRequest(method, url) {
  const parts = /^(https?):\/\/([^/]+)(\/.*)?$/.exec(url);
  if (parts === null) {
    throw `not an http(s) URL: ${url}`;
  }
  const headers = method === "POST" ? Fields.fromList([["content-length", utf8Encode("0")]]) : new Fields();
  const request = new OutgoingRequest(headers);
  request.setMethod({ tag: method === "POST" ? "post" : "get" });
  request.setScheme({ tag: parts[1] === "https" ? "HTTPS" : "HTTP" });
  request.setAuthority(parts[2]);
  request.setPathWithQuery(parts[3] ?? "/");
  const outgoingBody = request.body();
  const future = handle(request, null);
  OutgoingBody.finish(outgoingBody, null);

  future.subscribe().block();
  const outcome = future.get();
  if (outcome === null || outcome.tag !== "ok") {
    throw "no response";
  }
  if (outcome.val.tag !== "ok") {
    throw outcome.val.val;
  }
  const response = outcome.val.val;
  const status = response.status();
  const incoming = response.consume();
  const stream = incoming.stream();
  const chunks = [];
  let length = 0;
  for (;;) {
    let chunk;
    try {
      chunk = stream.blockingRead(MAX_BODY_BYTES);
    } catch (thrown) {
      // componentize-js throws the `err` as an Error whose `payload` is the stream-error.
      const error = thrown !== null && typeof thrown === "object" && "payload" in thrown ? thrown.payload : thrown;
      if (error !== null && typeof error === "object" && error.tag === "closed") {
        break;
      }
      throw "the response body could not be read";
    }
    length += chunk.length;
    if (length > MAX_BODY_BYTES) {
      throw `the response body is over ${MAX_BODY_BYTES} bytes`;
    }
    chunks.push(chunk);
  }
  const bytes = new Uint8Array(length);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  const body = utf8Decode(bytes);
  if (body === null) {
    throw "the response body is not UTF-8";
  }
  return { status, body };
}
