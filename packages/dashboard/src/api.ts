/** The only way the page talks to the server: the documented JSON API and the event stream. */

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

let onSignedOut: () => void = () => {};
/** Called when the server says the session is gone (401). */
export function whenSignedOut(fn: () => void): void {
  onSignedOut = fn;
}

async function answer<T>(res: Response): Promise<T> {
  const body = (await res.json().catch(() => ({}))) as { error?: { code: string; message: string } };
  if (!res.ok) {
    if (res.status === 401) onSignedOut();
    throw new ApiError(res.status, body.error?.code ?? 'HTTP', body.error?.message ?? `HTTP ${res.status}`);
  }
  return body as T;
}

export async function get<T>(path: string): Promise<T> {
  return answer<T>(await fetch(path, { headers: { accept: 'application/json' } }));
}

export async function post<T>(path: string, body: unknown): Promise<T> {
  return answer<T>(
    await fetch(path, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify(body),
    }),
  );
}

export function query(params: Record<string, string | number | null | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params))
    if (v !== null && v !== undefined && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}

type Listener = (data: unknown) => void;

/** One EventSource for the whole page; views subscribe by event name. */
class LiveEvents {
  private source: EventSource | null = null;
  private readonly listeners = new Map<string, Set<Listener>>();
  private readonly stateListeners = new Set<(live: boolean) => void>();

  on(event: string, fn: Listener): () => void {
    let set = this.listeners.get(event);
    if (!set) {
      set = new Set();
      this.listeners.set(event, set);
      this.source?.addEventListener(event, (e) => this.dispatch(event, e as MessageEvent<string>));
    }
    set.add(fn);
    return () => set.delete(fn);
  }

  onState(fn: (live: boolean) => void): void {
    this.stateListeners.add(fn);
  }

  connect(): void {
    if (this.source) return;
    const source = new EventSource('/api/events');
    this.source = source;
    for (const event of this.listeners.keys())
      source.addEventListener(event, (e) => this.dispatch(event, e as MessageEvent<string>));
    source.addEventListener('hello', () => {
      for (const fn of this.stateListeners) fn(true);
      this.dispatch('hello', new MessageEvent('hello', { data: '{}' }));
    });
    // The cloud could not keep this tab up to date event by event: reload as after a reconnect.
    source.addEventListener('resync', () =>
      this.dispatch('hello', new MessageEvent('hello', { data: '{}' })),
    );
    source.onerror = () => {
      for (const fn of this.stateListeners) fn(false);
    };
  }

  private dispatch(event: string, e: MessageEvent<string>): void {
    let data: unknown;
    try {
      data = JSON.parse(e.data);
    } catch {
      return;
    }
    for (const fn of this.listeners.get(event) ?? []) fn(data);
  }
}

export const live = new LiveEvents();
