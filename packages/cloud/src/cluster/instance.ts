import os from 'node:os';

/** The instance id when none is configured: unique per process on one host, readable in logs. */
export function defaultInstanceId(hostname = os.hostname(), pid = process.pid): string {
  const host = hostname.replace(/[^A-Za-z0-9._-]/g, '-').replace(/^[^A-Za-z0-9]+/, '') || 'cloud';
  return `${host.slice(0, 40)}-${pid}`;
}
