import { Octokit } from '@octokit/rest';

export const DEFAULT_GITHUB_API_URL = 'https://api.github.com';

export interface GitHubRepo {
  host: string;
  owner: string;
  repo: string;
}

/**
 * owner/repo of a GitHub remote URL, in the https, ssh and scp-like forms
 * (`https://github.com/o/r.git`, `ssh://git@github.com/o/r`, `git@github.com:o/r.git`).
 * Only github.com and the host of `apiUrl` (GitHub Enterprise) count as GitHub.
 */
export function parseGitHubRemote(
  remoteUrl: string,
  apiUrl: string = DEFAULT_GITHUB_API_URL,
): GitHubRepo | undefined {
  const url = remoteUrl.trim();
  let host: string;
  let repoPath: string;
  const scp = /^(?:[^@/\s]+@)?([^:/\s]+):(?!\/)(.+)$/.exec(url);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      return undefined;
    }
    if (!['https:', 'http:', 'ssh:', 'git:'].includes(parsed.protocol)) return undefined;
    host = parsed.hostname;
    repoPath = parsed.pathname;
  } else if (scp) {
    host = scp[1] ?? '';
    repoPath = scp[2] ?? '';
  } else {
    return undefined;
  }
  if (!githubHosts(apiUrl).has(host.toLowerCase())) return undefined;
  const m = /^\/?([A-Za-z0-9_.-]+)\/([A-Za-z0-9_.-]+?)(?:\.git)?\/?$/.exec(repoPath);
  if (!m?.[1] || !m[2]) return undefined;
  return { host: host.toLowerCase(), owner: m[1], repo: m[2] };
}

function githubHosts(apiUrl: string): Set<string> {
  const hosts = new Set(['github.com']);
  try {
    const api = new URL(apiUrl).hostname.toLowerCase();
    if (api !== 'api.github.com') hosts.add(api.replace(/^api\./, '')).add(api);
  } catch {
    // An invalid URL is refused at start-up; nothing extra here.
  }
  return hosts;
}

export interface PullRequestInput {
  repo: GitHubRepo;
  head: string;
  base: string;
  title: string;
  body: string;
}

export type PullRequestOutcome =
  | { ok: true; url: string; number: number; existed: boolean }
  | { ok: false; status: number | undefined; detail: string };

/** Opens a pull request through GitHub's REST API (or finds the one already open for the branch). */
export async function openPullRequest(
  settings: { apiUrl: string; token: string },
  input: PullRequestInput,
): Promise<PullRequestOutcome> {
  const octokit = new Octokit({
    auth: settings.token,
    baseUrl: settings.apiUrl.replace(/\/+$/, ''),
    userAgent: 'bematic-agent',
    // Octokit would warn on the console; nothing it says may carry the token, but it is not ours to print.
    log: { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} },
    request: { retries: 0 },
  });
  const { owner, repo } = input.repo;
  try {
    const created = await octokit.rest.pulls.create({
      owner,
      repo,
      head: input.head,
      base: input.base,
      title: input.title,
      body: input.body,
    });
    return { ok: true, url: created.data.html_url, number: created.data.number, existed: false };
  } catch (err) {
    const status = statusOf(err);
    if (status === 422) {
      const open = await octokit.rest.pulls
        .list({ owner, repo, head: `${owner}:${input.head}`, state: 'open' })
        .catch(() => undefined);
      const existing = open?.data[0];
      if (existing) return { ok: true, url: existing.html_url, number: existing.number, existed: true };
    }
    return { ok: false, status, detail: detailOf(err) };
  }
}

function statusOf(err: unknown): number | undefined {
  if (typeof err === 'object' && err !== null && 'status' in err && typeof err.status === 'number') {
    return err.status;
  }
  return undefined;
}

/** GitHub's own message, never the request (which carries the token). */
function detailOf(err: unknown): string {
  const status = statusOf(err);
  const message = err instanceof Error ? err.message : String(err);
  return `${status === undefined ? '' : `HTTP ${status}: `}${message}`.slice(0, 500);
}
