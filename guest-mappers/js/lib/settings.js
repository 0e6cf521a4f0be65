// Parsing and validation of the example mapper's settings.
//
// The operator's `mapper.settings` object arrives as JSON text. Every mistake is reported
// with the path of the offending key, because a `configure` error at start-up is all the
// operator sees.

/** The longest desktop id the contract allows, in bytes. */
const MAX_ID_BYTES = 128;

/** The longest disclaimer the contract allows, in bytes (UTF-8). */
export const MAX_DISCLAIMER_BYTES = 4096;

/** The default and the bounds of `min_password_length`. */
export const DEFAULT_MIN_PASSWORD_LENGTH = 12;
const MIN_PASSWORD_LENGTH_RANGE = [8, 128];

/** A settings error: `path` names the key, `message` says what was expected. */
export class SettingsError extends Error {
  /**
   * @param {string} path
   * @param {string} message
   */
  constructor(path, message) {
    super(`${path}: ${message}`);
    this.name = "SettingsError";
  }
}

/**
 * @typedef {object} DesktopEntry
 * @property {string} id stable id derived from the host name
 * @property {string} name
 * @property {string} hostname
 * @property {number | null} agentPort
 */

/**
 * @typedef {object} User
 * @property {string} username
 * @property {string} passwordHash
 * @property {string[]} groups
 * @property {boolean} mfa
 * @property {string | null} totpSecret the base32 secret, checked by the host's `verify-totp`
 * @property {boolean} disabled
 * @property {boolean} passwordExpired the password is right but must be changed
 */

/**
 * @typedef {object} Settings
 * @property {Map<string, User>} users by user name
 * @property {Map<string, DesktopEntry[]>} groups by group name
 * @property {string[]} domains
 * @property {string} logonDomain
 * @property {string | null} disclaimer shown after every correct password, when set
 * @property {string | null} powerApi the power API's base URL, without a trailing slash
 * @property {number} minPasswordLength the shortest new password `change-password` accepts
 */

/**
 * Parses and validates the settings JSON.
 * @param {string} json
 * @returns {Settings}
 * @throws {SettingsError}
 */
export function parseSettings(json) {
  let raw;
  try {
    raw = JSON.parse(json);
  } catch (error) {
    throw new SettingsError("settings", `not valid JSON (${error.message})`);
  }
  const top = object(raw, "settings");
  allowKeys(top, "", [
    "users",
    "groups",
    "domains",
    "logon_domain",
    "disclaimer",
    "power_api",
    "min_password_length",
  ]);

  const groups = parseGroups(top.groups === undefined ? {} : top.groups);
  const domains = top.domains === undefined ? [] : stringList(top.domains, "domains");
  const logonDomain = top.logon_domain === undefined ? "" : string(top.logon_domain, "logon_domain");
  const disclaimer = top.disclaimer === undefined ? null : parseDisclaimer(top.disclaimer);
  const powerApi = top.power_api === undefined ? null : parsePowerApi(top.power_api);
  const minPasswordLength =
    top.min_password_length === undefined
      ? DEFAULT_MIN_PASSWORD_LENGTH
      : parseMinPasswordLength(top.min_password_length);

  if (top.users === undefined) {
    throw new SettingsError("users", "missing (expected a list of users)");
  }
  if (!Array.isArray(top.users)) {
    throw new SettingsError("users", "expected a list of users");
  }
  const users = new Map();
  top.users.forEach((entry, index) => {
    const user = parseUser(entry, `users[${index}]`, groups);
    if (users.has(user.username)) {
      throw new SettingsError(`users[${index}].username`, `duplicate user "${user.username}"`);
    }
    users.set(user.username, user);
  });
  return { users, groups, domains, logonDomain, disclaimer, powerApi, minPasswordLength };
}

/**
 * The desktops of a user: the union of its groups' desktops, in group order, without
 * duplicates.
 * @param {Settings} settings
 * @param {User} user
 * @returns {DesktopEntry[]}
 */
export function desktopsOf(settings, user) {
  const seen = new Set();
  const result = [];
  for (const group of user.groups) {
    for (const desktop of settings.groups.get(group) ?? []) {
      if (!seen.has(desktop.id)) {
        seen.add(desktop.id);
        result.push(desktop);
      }
    }
  }
  return result;
}

/**
 * The stable desktop id: the host name in lower case with every character other than a
 * letter, a digit or `-` replaced by `-` (`ws-art-1.example.com` -> `ws-art-1-example-com`).
 * Zero clients remember desktops by id, so it must not depend on list order.
 * @param {string} hostname
 * @returns {string}
 */
export function desktopId(hostname) {
  return hostname.toLowerCase().replace(/[^a-z0-9-]/g, "-");
}

/**
 * Whether `text` is a base32 secret as authenticator apps show it (case, spaces and `=` padding
 * forgiven), in the same terms as the host's `verify-totp`.
 * @param {string} text
 * @returns {boolean}
 */
export function isBase32(text) {
  const clean = text.replace(/\s/g, "").replace(/=+$/, "").toUpperCase();
  // Lengths 1, 3 and 6 (mod 8) cannot come from whole bytes.
  return /^[A-Z2-7]+$/.test(clean) && ![1, 3, 6].includes(clean.length % 8);
}

/**
 * The number of bytes of `text` in UTF-8.
 * @param {string} text
 * @returns {number}
 */
export function utf8Length(text) {
  let bytes = 0;
  for (const char of text) {
    const code = char.codePointAt(0);
    bytes += code < 0x80 ? 1 : code < 0x800 ? 2 : code < 0x10000 ? 3 : 4;
  }
  return bytes;
}

function parseDisclaimer(value) {
  const text = nonEmptyString(value, "disclaimer");
  if (utf8Length(text) > MAX_DISCLAIMER_BYTES) {
    throw new SettingsError("disclaimer", `longer than ${MAX_DISCLAIMER_BYTES} bytes`);
  }
  return text;
}

function parsePowerApi(value) {
  const url = string(value, "power_api");
  if (!/^https?:\/\/[^/?#\s@]+(\/[^?#\s]*)?$/.test(url) || url.endsWith("/")) {
    throw new SettingsError(
      "power_api",
      "expected an http:// or https:// base URL without a trailing slash",
    );
  }
  return url;
}

function parseMinPasswordLength(value) {
  const [low, high] = MIN_PASSWORD_LENGTH_RANGE;
  if (!Number.isInteger(value) || value < low || value > high) {
    throw new SettingsError("min_password_length", `expected an integer between ${low} and ${high}`);
  }
  return value;
}

function parseGroups(value) {
  const groupsObject = object(value, "groups");
  const groups = new Map();
  // Which desktop claimed each id, so that two different desktops cannot share one.
  const owners = new Map();
  for (const [groupName, desktops] of Object.entries(groupsObject)) {
    const groupPath = `groups.${groupName}`;
    if (!Array.isArray(desktops)) {
      throw new SettingsError(groupPath, "expected a list of desktops");
    }
    const entries = desktops.map((item, index) => {
      const path = `${groupPath}[${index}]`;
      const desktop = parseDesktop(item, path);
      const owner = owners.get(desktop.id);
      if (owner === undefined) {
        owners.set(desktop.id, { path, desktop });
      } else if (owner.desktop.name !== desktop.name || owner.desktop.agentPort !== desktop.agentPort) {
        throw new SettingsError(
          `${path}.hostname`,
          `desktop id "${desktop.id}" is already used by ${owner.path} with a different name or agent_port`,
        );
      }
      return desktop;
    });
    groups.set(groupName, entries);
  }
  return groups;
}

function parseDesktop(value, path) {
  const desktop = object(value, path);
  allowKeys(desktop, path, ["name", "hostname", "agent_port"]);
  const name = nonEmptyString(desktop.name, `${path}.name`);
  const hostname = nonEmptyString(desktop.hostname, `${path}.hostname`);
  if (!/^[A-Za-z0-9._:-]+$/.test(hostname)) {
    throw new SettingsError(`${path}.hostname`, "expected a host name or an IP address");
  }
  const id = desktopId(hostname);
  if (id.length > MAX_ID_BYTES) {
    throw new SettingsError(`${path}.hostname`, `longer than ${MAX_ID_BYTES} characters`);
  }
  let agentPort = null;
  if (desktop.agent_port !== undefined) {
    const port = desktop.agent_port;
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new SettingsError(`${path}.agent_port`, "expected a port number between 1 and 65535");
    }
    agentPort = port;
  }
  return { id, name, hostname, agentPort };
}

function parseUser(value, path, groups) {
  const user = object(value, path);
  allowKeys(user, path, [
    "username",
    "password_hash",
    "groups",
    "mfa",
    "totp_secret",
    "disabled",
    "password_expired",
  ]);
  const username = nonEmptyString(user.username, `${path}.username`);
  const passwordHash = nonEmptyString(user.password_hash, `${path}.password_hash`);
  const userGroups = user.groups === undefined ? [] : stringList(user.groups, `${path}.groups`);
  userGroups.forEach((group, index) => {
    if (!groups.has(group)) {
      throw new SettingsError(`${path}.groups[${index}]`, `unknown group "${group}"`);
    }
  });
  const mfa = user.mfa === undefined ? false : boolean(user.mfa, `${path}.mfa`);
  const disabled = user.disabled === undefined ? false : boolean(user.disabled, `${path}.disabled`);
  const passwordExpired =
    user.password_expired === undefined
      ? false
      : boolean(user.password_expired, `${path}.password_expired`);
  let totpSecret = null;
  if (user.totp_secret !== undefined) {
    totpSecret = nonEmptyString(user.totp_secret, `${path}.totp_secret`);
    if (!isBase32(totpSecret)) {
      throw new SettingsError(`${path}.totp_secret`, "expected a base32 secret");
    }
  }
  if (mfa && totpSecret === null) {
    throw new SettingsError(`${path}.totp_secret`, "missing (required when mfa is true)");
  }
  return { username, passwordHash, groups: userGroups, mfa, totpSecret, disabled, passwordExpired };
}

function object(value, path) {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new SettingsError(path, "expected an object");
  }
  return value;
}

function allowKeys(value, path, allowed) {
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) {
      throw new SettingsError(
        path === "" ? key : `${path}.${key}`,
        `unknown key (expected one of: ${allowed.join(", ")})`,
      );
    }
  }
}

function string(value, path) {
  if (typeof value !== "string") {
    throw new SettingsError(path, "expected a string");
  }
  return value;
}

function nonEmptyString(value, path) {
  if (value === undefined) {
    throw new SettingsError(path, "missing (expected a non-empty string)");
  }
  if (typeof value !== "string" || value === "") {
    throw new SettingsError(path, "expected a non-empty string");
  }
  return value;
}

function boolean(value, path) {
  if (typeof value !== "boolean") {
    throw new SettingsError(path, "expected true or false");
  }
  return value;
}

function stringList(value, path) {
  if (!Array.isArray(value) || !value.every((item) => typeof item === "string")) {
    throw new SettingsError(path, "expected a list of strings");
  }
  return value;
}
