// The power API behind `operate`: a small HTTP service that restarts, powers down and powers up
// machines. The transport is injected (`wasi:http` in the component, a fake in the tests).

/** The operations every desktop offers when `power_api` is set, in this order. */
export const POWER_OPERATIONS = ["restart", "power-down", "power-up"];

/**
 * @typedef {object} HttpResponse
 * @property {number} status
 * @property {string} body the body as text (UTF-8)
 */

/**
 * Sends one request and waits for the whole response; throws (a string or an Error) on a
 * transport error.
 * @typedef {(method: "GET" | "POST", url: string) => HttpResponse} Http
 */

/**
 * The path segment of a machine: its host name, percent-encoded (RFC 3986: every byte other than
 * a letter, a digit or `-._~`).
 * @param {string} hostname
 * @returns {string}
 */
export function machineSegment(hostname) {
  return encodeURIComponent(hostname).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

/**
 * Performs `op` on the machine `hostname` through the power API at `base`.
 * Every failure of the API is `refused("power API: …")`, never an exception: the user gets a
 * clean "could not" and the session goes on.
 * @param {Http} http
 * @param {string} base the `power_api` base URL, without a trailing slash
 * @param {string} hostname
 * @param {"restart" | "power-down" | "power-up"} op
 * @returns {{tag: "done" | "try-again" | "refused", val: string}}
 */
export function powerOperation(http, base, hostname, op) {
  const machine = `${base}/machines/${machineSegment(hostname)}`;
  try {
    if (op !== "power-up") {
      post(http, `${machine}/${op}`);
      return { tag: "done", val: "requested" };
    }
    const state = machineState(http, machine);
    if (state === "running") {
      return { tag: "done", val: "running" };
    }
    if (state === "starting") {
      return { tag: "try-again", val: "starting" };
    }
    post(http, `${machine}/power-up`);
    return { tag: "try-again", val: "powering on" };
  } catch (error) {
    return { tag: "refused", val: `power API: ${describe(error)}` };
  }
}

/** A failure of the power API, with the detail for the log. */
class PowerApiError extends Error {}

function send(http, method, url) {
  let response;
  try {
    response = http(method, url);
  } catch (error) {
    throw new PowerApiError(`${method} ${url}: ${describe(error)}`);
  }
  if (response.status < 200 || response.status > 299) {
    throw new PowerApiError(`${method} ${url} answered ${response.status}`);
  }
  return response;
}

function post(http, url) {
  send(http, "POST", url);
}

function machineState(http, url) {
  const response = send(http, "GET", url);
  let parsed;
  try {
    parsed = JSON.parse(response.body);
  } catch {
    throw new PowerApiError(`GET ${url}: the body is not JSON`);
  }
  const state = parsed !== null && typeof parsed === "object" ? parsed.state : undefined;
  if (state !== "running" && state !== "starting" && state !== "stopped") {
    throw new PowerApiError(`GET ${url}: expected {"state": "running" | "starting" | "stopped"}`);
  }
  return state;
}

function describe(thrown) {
  // componentize-js throws an import's `err` as an Error whose `payload` is the WIT value.
  const error = thrown !== null && typeof thrown === "object" && "payload" in thrown ? thrown.payload : thrown;
  if (error instanceof Error) {
    return error.message;
  }
  if (error !== null && typeof error === "object" && "tag" in error) {
    // A WIT variant, such as a wasi:http error-code.
    return error.val === undefined ? error.tag : `${error.tag} (${JSON.stringify(error.val)})`;
  }
  return String(error);
}
