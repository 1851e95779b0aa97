/**
 * Which `Host` names the console answers to. A page on another site that
 * re-points its own name at 127.0.0.1 (DNS rebinding) still sends its own
 * name as Host, so refusing unknown names keeps such pages out even before
 * the session check.
 */
export class AllowedHosts {
  private readonly names: Set<string>;

  constructor(publicUrl?: string) {
    this.names = new Set(['localhost', '127.0.0.1', '[::1]']);
    if (publicUrl) this.names.add(new URL(publicUrl).hostname.toLowerCase());
  }

  /** `host` as sent in the Host header (name or address, optional port). */
  allows(host: string | undefined): boolean {
    if (!host) return false;
    const name = hostname(host);
    return name !== null && this.names.has(name);
  }

  /** Whether an Origin header names an allowed host (any port: the console may sit behind a proxy). */
  allowsOrigin(origin: string): boolean {
    try {
      return this.allows(new URL(origin).host);
    } catch {
      return false;
    }
  }

  list(): string[] {
    return [...this.names];
  }
}

/** A Host header is a name or address and an optional port; anything else (userinfo, paths) is refused. */
const HOST_HEADER = /^(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(:\d{1,5})?$/i;

function hostname(host: string): string | null {
  if (!HOST_HEADER.test(host)) return null;
  try {
    return new URL(`http://${host}`).hostname.toLowerCase();
  } catch {
    return null;
  }
}
