// Drives the operator dashboard in Debian's headless chromium with playwright-core (never a
// downloaded browser). The Rust test `e2e::dashboard` starts the broker, runs this script with
// `node`, and plays the PCoIP clients; the two talk over stdin/stdout, one line per step:
//
//   script → test   signed-in              the page is signed in and its feed is live
//   test → script   sessions REF_A REF_B   two clients are logged in (session refs)
//   script → test   seen                   both rows are on the page
//   test → script   bye                    client A said bye just now
//   script → test   gone-a MS              A's row went away MS ms after the line arrived
//   script → test   clicked                the End button of B's row was clicked
//   script → test   gone-b MS              B's row went away MS ms after the click
//   script → test   done PATH              the screenshot is saved at PATH
//
// Environment: DASHBOARD_URL, ADMIN_TOKEN, SCREENSHOT (a .png path), CHROMIUM (default
// /usr/bin/chromium). Any failure exits non-zero with the reason on stderr.
import { chromium } from "playwright-core";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

const STEP_MS = 10_000;
const url = process.env.DASHBOARD_URL;
const token = process.env.ADMIN_TOKEN;
const screenshot = process.env.SCREENSHOT;
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
if (!url || !token || !screenshot) throw new Error("DASHBOARD_URL, ADMIN_TOKEN and SCREENSHOT are required");
if (!existsSync(executablePath)) throw new Error(`no chromium at ${executablePath}: apt-get install -y chromium`);

const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
async function expectLine(prefix) {
  const next = await Promise.race([
    lines.next(),
    new Promise((_, reject) => setTimeout(() => reject(new Error(`no "${prefix}" line from the test`)), 30_000)),
  ]);
  if (next.done || !next.value.startsWith(prefix)) throw new Error(`expected "${prefix}", got ${JSON.stringify(next.value)}`);
  return next.value.slice(prefix.length).trim().split(/\s+/).filter(Boolean);
}
function say(line) { process.stdout.write(line + "\n"); }

const profile = mkdtempSync(join(tmpdir(), "interstate-chromium-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath,
  headless: true,
  ignoreHTTPSErrors: true,
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-quic", "--no-first-run",
  ],
});
const violations = [];
try {
  const page = context.pages()[0] || (await context.newPage());
  page.setDefaultTimeout(STEP_MS);
  page.on("console", (message) => {
    if (/Content Security Policy|Refused to/.test(message.text())) violations.push(message.text());
  });
  page.on("pageerror", (error) => violations.push(String(error)));

  const response = await page.goto(url);
  const csp = response.headers()["content-security-policy"] || "";
  if (!csp.includes("default-src 'none'") || !csp.includes("script-src 'self'")) throw new Error(`weak CSP: ${csp}`);

  await page.fill("#token", "not-the-token");
  await page.click("#signin-button");
  await page.waitForFunction(() => document.querySelector("#signin-error").textContent.length > 0);
  await page.fill("#token", token);
  await page.click("#signin-button");
  await page.waitForSelector("#main:not([hidden])");
  await page.waitForFunction(() => document.querySelector("#feed-state").textContent === "live");
  const cookies = await context.cookies();
  const cookie = cookies.find((c) => c.name === "interstate_admin");
  if (!cookie || cookie.sameSite !== "Strict" || !cookie.httpOnly) throw new Error(`cookie: ${JSON.stringify(cookie)}`);
  say("signed-in");

  const [a, b] = await expectLine("sessions");
  await page.waitForSelector(`tr[data-session="${a}"]`);
  await page.waitForSelector(`tr[data-session="${b}"]`);
  say("seen");

  await expectLine("bye");
  const byeAt = Date.now();
  await page.waitForSelector(`tr[data-session="${a}"]`, { state: "detached" });
  say(`gone-a ${Date.now() - byeAt}`);

  await page.click(`tr[data-session="${b}"] button.end-session`);
  const clickedAt = Date.now();
  say("clicked");
  await page.waitForSelector(`tr[data-session="${b}"]`, { state: "detached" });
  say(`gone-b ${Date.now() - clickedAt}`);

  await page.waitForFunction(() => document.querySelectorAll("#events li").length >= 4);
  await page.screenshot({ path: screenshot, fullPage: true });
  if (violations.length > 0) throw new Error(`page errors: ${violations.join(" | ")}`);
  say(`done ${screenshot}`);
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
process.exit(0);
