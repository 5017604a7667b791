// Who may look and who may act. Tokens come from configuration (WALFLOW_UI_VIEW_TOKEN to view,
// WALFLOW_UI_TOKEN to act); a person signs in once with a token and gets a signed, HttpOnly,
// SameSite=Strict cookie naming the level it grants. State-changing requests also need a CSRF token
// derived from that cookie (in a hidden form field) and, when the browser sends one, a same-origin
// Origin header. Signatures use a key made at startup: restarting the console signs everyone out.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export type Level = 'none' | 'view' | 'act';

export interface AuthConfig {
  /** Enables retry/cancel; unset: actions are disabled. */
  actionToken?: string;
  /** Required to view anything; unset: anyone who can reach the port may view. */
  viewToken?: string;
}

export const COOKIE = 'walflow_console';
const SESSION_MS = 12 * 3600_000;

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export class ConsoleAuth {
  private readonly key = randomBytes(32);
  constructor(readonly config: AuthConfig) {}

  get actionsEnabled(): boolean {
    return !!this.config.actionToken;
  }

  get viewNeedsToken(): boolean {
    return !!this.config.viewToken;
  }

  private sign(text: string): string {
    return createHmac('sha256', this.key).update(text).digest('base64url');
  }

  /** The level a token grants (the action token also grants viewing), or undefined if it grants none. */
  levelOfToken(token: string): Level | undefined {
    if (this.config.actionToken && same(token, this.config.actionToken)) return 'act';
    if (this.config.viewToken && same(token, this.config.viewToken)) return 'view';
    return undefined;
  }

  cookieFor(level: Level, now = Date.now()): string {
    const body = `${level}.${now + SESSION_MS}`;
    return `${body}.${this.sign(body)}`;
  }

  /** The level a request's cookie proves (without a view token configured, everyone may view). */
  levelOf(cookie: string | undefined, now = Date.now()): Level {
    const open: Level = this.viewNeedsToken ? 'none' : 'view';
    if (!cookie) return open;
    const [level, expires, sig] = cookie.split('.');
    if (!level || !expires || !sig || !same(sig, this.sign(`${level}.${expires}`)) || Number(expires) < now) return open;
    if (level === 'act' && this.actionsEnabled) return 'act';
    if (level === 'view' || level === 'act') return 'view';
    return open;
  }

  /** The CSRF token of a session: forms carry it, and a cross-site page cannot read it. */
  csrfFor(cookie: string | undefined): string {
    return this.sign(`csrf:${cookie ?? ''}`);
  }

  csrfValid(cookie: string | undefined, token: string | undefined): boolean {
    return !!cookie && !!token && same(token, this.csrfFor(cookie));
  }
}
