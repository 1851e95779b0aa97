/**
 * GitHub REST emulator — the GitHub double at the network edge.
 *
 * Point an agent at it with `GITHUB_API_URL=emulator.url`. It speaks the part
 * of the REST API Bematic uses, with GitHub's status codes and error shapes:
 *
 * - `POST /repos/{owner}/{repo}/pulls` — opens a pull request (201), or 422
 *   when one is already open for the head, when a field is missing, or when the
 *   head branch does not exist (checked with `branchExists`, e.g. against the
 *   bare repository the test pushes to);
 * - `GET /repos/{owner}/{repo}/pulls?head=owner:branch&state=open` — lists them;
 * - every request without `Authorization: token <token>` (or `Bearer`) gets 401
 *   "Bad credentials".
 *
 * Every request is recorded in `requests` (method, path, whether it was
 * authorised, parsed body) so a test can assert exactly what GitHub was asked.
 * The token itself is never recorded.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface GitHubPullRequest {
  number: number;
  owner: string;
  repo: string;
  head: string;
  base: string;
  title: string;
  body: string;
  state: 'open' | 'closed';
  html_url: string;
}

export interface GitHubRequest {
  method: string;
  path: string;
  authorized: boolean;
  body: unknown;
}

export interface GitHubEmulatorOptions {
  /** The token requests must carry. */
  token: string;
  /** Whether a head branch exists in owner/repo (default: every branch exists). */
  branchExists?: (owner: string, repo: string, branch: string) => boolean | Promise<boolean>;
}

export interface GitHubEmulator {
  /** Base URL to use as GITHUB_API_URL. */
  url: string;
  readonly requests: GitHubRequest[];
  pullRequests(): GitHubPullRequest[];
  close(): Promise<void>;
}

export async function startGitHubEmulator(options: GitHubEmulatorOptions): Promise<GitHubEmulator> {
  const requests: GitHubRequest[] = [];
  const pulls: GitHubPullRequest[] = [];

  const send = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
    res.end(JSON.stringify(body));
  };
  const validation = (res: ServerResponse, message: string) =>
    send(res, 422, {
      message: 'Validation Failed',
      errors: [{ resource: 'PullRequest', code: 'custom', message }],
      documentation_url: 'https://docs.github.com/rest/pulls/pulls#create-a-pull-request',
    });

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://github.local');
    const raw = await readBody(req);
    let body: unknown = null;
    try {
      body = raw.length > 0 ? JSON.parse(raw) : null;
    } catch {
      return send(res, 400, { message: 'Problems parsing JSON' });
    }
    const auth = req.headers.authorization ?? '';
    const authorized = auth === `token ${options.token}` || auth === `Bearer ${options.token}`;
    requests.push({ method: req.method ?? 'GET', path: url.pathname, authorized, body });
    if (!authorized) return send(res, 401, { message: 'Bad credentials' });

    const m = /^\/repos\/([^/]+)\/([^/]+)\/pulls$/.exec(url.pathname);
    if (!m) return send(res, 404, { message: 'Not Found' });
    const owner = decodeURIComponent(m[1] ?? '');
    const repo = decodeURIComponent(m[2] ?? '');
    if (req.method === 'GET') {
      const head = url.searchParams.get('head');
      const state = url.searchParams.get('state') ?? 'open';
      return send(
        res,
        200,
        pulls.filter(
          (p) =>
            p.owner === owner &&
            p.repo === repo &&
            (state === 'all' || p.state === state) &&
            (head === null || `${p.owner}:${p.head}` === head),
        ),
      );
    }
    if (req.method !== 'POST') return send(res, 404, { message: 'Not Found' });
    const input = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
    const title = typeof input.title === 'string' ? input.title : '';
    const head = typeof input.head === 'string' ? input.head : '';
    const base = typeof input.base === 'string' ? input.base : '';
    if (!title || !head || !base) return validation(res, 'title, head and base are required');
    if (pulls.some((p) => p.owner === owner && p.repo === repo && p.head === head && p.state === 'open')) {
      return validation(res, `A pull request already exists for ${owner}:${head}.`);
    }
    if (options.branchExists && !(await options.branchExists(owner, repo, head))) {
      return validation(res, `head ${head} does not exist`);
    }
    const number = pulls.length + 1;
    const pr: GitHubPullRequest = {
      number,
      owner,
      repo,
      head,
      base,
      title,
      body: typeof input.body === 'string' ? input.body : '',
      state: 'open',
      html_url: `https://github.com/${owner}/${repo}/pull/${number}`,
    };
    pulls.push(pr);
    return send(res, 201, { ...pr, id: 1000 + number, head: { ref: head }, base: { ref: base } });
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => send(res, 500, { message: String(err) }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    pullRequests: () => pulls.map((p) => ({ ...p })),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
