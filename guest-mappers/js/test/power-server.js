// A scripted power API on 127.0.0.1, for the component tests. It runs in its own thread (see
// `startPowerApi`) because the WASI shim's wasi:http blocks the main thread during a call.
//
// Control routes (not part of the power API): `PUT /_script` with a JSON object
// `{"METHOD /path": {"status": n, "body": "..."}}` replaces the answers, and `GET /_log` returns
// every power API request seen so far as a JSON list of "METHOD /path".

import { createServer } from "node:http";
import { isMainThread, parentPort, Worker } from "node:worker_threads";

if (!isMainThread) {
  let script = {};
  const seen = [];
  const server = createServer((request, response) => {
    const chunks = [];
    request.on("data", (chunk) => chunks.push(chunk));
    request.on("end", () => {
      const key = `${request.method} ${request.url}`;
      if (key === "PUT /_script") {
        script = JSON.parse(Buffer.concat(chunks).toString("utf8"));
        response.end();
        return;
      }
      if (key === "GET /_log") {
        response.setHeader("content-type", "application/json");
        response.end(JSON.stringify(seen));
        return;
      }
      seen.push(key);
      const answer = script[key] ?? { status: 404, body: "" };
      response.statusCode = answer.status;
      response.end(answer.body);
    });
  });
  server.listen(0, "127.0.0.1", () => parentPort.postMessage(server.address().port));
}

/**
 * Starts the power API in a worker thread.
 * @returns {Promise<{base: string, script: (answers: object) => Promise<void>,
 *                    log: () => Promise<string[]>, stop: () => Promise<number>}>}
 */
export async function startPowerApi() {
  const worker = new Worker(new URL(import.meta.url));
  const port = await new Promise((resolve, reject) => {
    worker.once("message", resolve);
    worker.once("error", reject);
  });
  const origin = `http://127.0.0.1:${port}`;
  return {
    base: `${origin}/api`,
    async script(answers) {
      const response = await fetch(`${origin}/_script`, { method: "PUT", body: JSON.stringify(answers) });
      if (!response.ok) {
        throw new Error(`the power API refused its script: ${response.status}`);
      }
    },
    async log() {
      return (await fetch(`${origin}/_log`)).json();
    },
    stop: () => worker.terminate(),
  };
}
