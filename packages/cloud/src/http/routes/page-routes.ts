import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { type RouteContext, sendError } from '../http-server.js';

/** The built front end may load only from this server: no CDN, no inline script. */
const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/** Where `npm run build` puts the @bematic/dashboard bundle. */
export function defaultAssetsDir(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve('@bematic/dashboard/package.json')), 'dist');
}

/** The front end: index.html for every page path, hashed bundles under /assets/. */
export function registerPageRoutes(app: FastifyInstance, { deps }: RouteContext): void {
  const root = deps.assetsDir ?? defaultAssetsDir();
  const built = existsSync(join(root, 'index.html'));
  const assets = join(root, 'assets');
  void app.register(fastifyStatic, {
    root: existsSync(assets) ? assets : root,
    prefix: '/assets/',
    index: false,
    wildcard: true,
    setHeaders: (res) => {
      res.setHeader('content-security-policy', CSP);
      res.setHeader('x-content-type-options', 'nosniff');
    },
  });
  const shell = async (_req: unknown, reply: FastifyReply) => {
    if (!built)
      return sendError(reply, 503, 'FRONTEND_NOT_BUILT', `no front end in ${root}: run npm run build`);
    return reply
      .header('content-security-policy', CSP)
      .header('cache-control', 'no-store')
      .header('x-frame-options', 'DENY')
      .sendFile('index.html', root);
  };
  app.get('/', shell);
  app.get('/tasks/:id', shell);
}
