/**
 * An error caused by the user's input or environment (bad URL, missing binaries, bad config).
 * The CLI prints its message as one line, without a stack trace, and exits with `exitCode`
 * (2: a user error; 3: what was named does not exist, or there is nothing to do).
 */
export class UserError extends Error {
  override name = 'UserError';
  constructor(
    message: string,
    readonly exitCode = 2,
  ) {
    super(message);
  }
}

export function isUserError(err: unknown): err is UserError {
  return err instanceof UserError;
}

/**
 * Secret values this process knows (database passwords, API keys read through config): removed
 * from every message, log line and stored error, whatever the text around them looks like.
 */
const knownSecrets = new Set<string>();
let secretList: string[] = [];

/** Registers a secret value (and its URL-encoded and JSON-escaped forms) for redactSecrets(). */
export function registerSecret(value: string | undefined | null): void {
  if (!value || value.length < 4) return; // shorter values would redact ordinary words
  const forms = new Set([value, encodeURIComponent(value), JSON.stringify(value).slice(1, -1)]);
  try {
    forms.add(decodeURIComponent(value));
  } catch {
    /* not URL-encoded */
  }
  let added = false;
  for (const f of forms) {
    if (f.length >= 4 && !knownSecrets.has(f)) {
      knownSecrets.add(f);
      added = true;
    }
  }
  // Longest first, so that a secret containing another is replaced whole.
  if (added) secretList = [...knownSecrets].sort((a, b) => b.length - a.length);
}

/**
 * Removes secrets from a message: passwords in connection strings (URL and key=value forms),
 * bearer tokens and API-key fields, and every value passed to registerSecret().
 */
export function redactSecrets(text: string): string {
  let out = text
    .replace(/(postgres(?:ql)?:\/\/[^:/@\s]*:)([^@\s]*)@/gi, '$1***@')
    .replace(/(password=)([^\s&]+)/gi, '$1***')
    .replace(/(\bBearer\s+)[A-Za-z0-9._~+/=-]+/gi, '$1***')
    .replace(/(\bapi[-_]?key\b["']?\s*[:=]\s*["']?)[^\s"'&,;}]+/gi, '$1***');
  for (const s of secretList) if (out.includes(s)) out = out.split(s).join('***');
  return out;
}
