/**
 * Secret redaction shared by the agent and the cloud: the one place that decides what a credential looks
 * like. Everything a person or a log can see (results, progress, stored rows, Slack, console, logs) passes
 * through `redactSecrets`; text bound for chat also passes through `redactInternalAddresses`.
 */

export interface RedactionRule {
  /** Shown in the placeholder: `[redacted:aws-access-key]`. */
  readonly name: string;
  readonly pattern: RegExp;
  /**
   * Capture group holding the secret when the match also holds context to keep (a variable name, a
   * header name). Without it the whole match is replaced.
   */
  readonly secretGroup?: number;
}

const placeholder = (name: string): string => `[redacted:${name}]`;

/**
 * Names of assignments whose value is a credential, wherever they appear (`.env` files, `env` output,
 * JSON, YAML, command lines): `AWS_SECRET_ACCESS_KEY=…`, `"password": "…"`, `--token …` is not covered.
 */
const SECRET_NAME =
  '[A-Za-z0-9_.-]*(?:password|passwd|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|private[_-]?key|credentials?|auth[_-]?key|session[_-]?key|signing[_-]?key)[A-Za-z0-9_.-]*';

/** The rule set, most specific first, so a GitHub token inside `GITHUB_TOKEN=` is named for what it is. */
export const REDACTION_RULES: readonly RedactionRule[] = [
  {
    name: 'private-key',
    pattern:
      /-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?(?:-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|$)/g,
  },
  { name: 'anthropic-key', pattern: /\bsk-ant-[A-Za-z0-9_-]{8,}/g },
  { name: 'openai-key', pattern: /\bsk-(?:proj-|svcacct-|admin-|None-)?[A-Za-z0-9_-]{20,}/g },
  { name: 'stripe-key', pattern: /\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}\b/g },
  { name: 'stripe-webhook-secret', pattern: /\bwhsec_[A-Za-z0-9]{24,}\b/g },
  { name: 'github-token', pattern: /\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{30,255}\b/g },
  { name: 'github-token', pattern: /\bgithub_pat_[A-Za-z0-9_]{22,255}\b/g },
  { name: 'gitlab-token', pattern: /\bgl(?:pat|ptt|dt|rt|cbt|imt|oas|ft|sat)-[A-Za-z0-9_-]{20,}\b/g },
  { name: 'gitlab-token', pattern: /\bGR1348941[A-Za-z0-9_-]{20,}\b/g },
  { name: 'slack-token', pattern: /\bxox[abposre]-[A-Za-z0-9-]{8,}/g },
  { name: 'slack-token', pattern: /\bxapp-[A-Za-z0-9-]{8,}/g },
  {
    name: 'slack-webhook',
    pattern: /https:\/\/hooks\.slack\.com\/(?:services|workflows|triggers)\/[A-Za-z0-9/_-]{16,}/g,
  },
  { name: 'google-api-key', pattern: /\bAIza[0-9A-Za-z_-]{35}\b/g },
  { name: 'google-oauth-token', pattern: /\bya29\.[0-9A-Za-z_-]{20,}/g },
  { name: 'google-client-secret', pattern: /\bGOCSPX-[0-9A-Za-z_-]{20,}/g },
  { name: 'npm-token', pattern: /\bnpm_[A-Za-z0-9]{36}\b/g },
  {
    name: 'aws-access-key',
    pattern: /\b(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|APKA)[A-Z0-9]{16}\b/g,
  },
  { name: 'jwt', pattern: /\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/g },
  {
    name: 'authorization',
    pattern: /\b((?:Bearer|Basic|Token|Digest)\s+)([A-Za-z0-9._~+/=-]{8,})/gi,
    secretGroup: 2,
  },
  { name: 'url-password', pattern: /([a-z][a-z0-9+.-]*:\/\/[^\s:/@]+:)([^\s@/]{1,})(@)/gi, secretGroup: 2 },
  {
    name: 'assignment',
    pattern: new RegExp(
      // The value must hold a letter: "tokens: 1200" is a count, not a credential.
      `(\\b${SECRET_NAME}["']?\\s*(?:=|:|=>)\\s*["']?)((?=[^\\s"',;}{\\]\\[]*[A-Za-z])[^\\s"',;}{\\]\\[]{4,})`,
      'gi',
    ),
    secretGroup: 2,
  },
];

/**
 * Text every rule's match must contain (case folded, so a superset): a string without any of it holds no
 * credential a rule could find, and skips the rule set. Kept beside the rules; redaction.test.ts checks that
 * each rule's matches in its corpus contain it.
 */
export const SECRET_HINT = new RegExp(
  [
    '-----BEGIN', // private-key
    'sk-', // anthropic, openai
    '_live_',
    '_test_', // stripe
    'whsec_',
    'gh[pousr]_',
    'github_pat_',
    'gl[a-z]{2,3}-',
    'GR1348941',
    'xox[abposre]-',
    'xapp-',
    'hooks\\.slack\\.com',
    'AIza',
    'ya29\\.',
    'GOCSPX-',
    'npm_',
    'A(?:KIA|SIA|BIA|CCA|GPA|IDA|ROA|IPA|NPA|NVA|PKA)',
    'eyJ',
    'bearer|basic|token|digest', // authorization
    '://', // url-password
    // assignment: the names SECRET_NAME is built from
    'password|passwd|pwd|secret|api[_-]?key|apikey|access[_-]?key|private[_-]?key|credential|auth[_-]?key|session[_-]?key|signing[_-]?key',
  ].join('|'),
  'i',
);

function applyRule(text: string, rule: RedactionRule): string {
  return text.replace(rule.pattern, (match: string, ...groups: unknown[]) => {
    if (rule.secretGroup === undefined) return placeholder(rule.name);
    const at = rule.secretGroup - 1;
    const parts = groups.slice(0, -2).map((g) => (typeof g === 'string' ? g : ''));
    const secret = parts[at] ?? '';
    if (secret.length === 0 || secret.startsWith('[redacted')) return match;
    return parts.map((p, i) => (i === at ? placeholder(rule.name) : p)).join('');
  });
}

/**
 * Replaces every credential in `text` with `[redacted:<kind>]`. `knownSecrets` are exact values the
 * caller holds (its API key, the agent key) and are removed whatever they look like.
 */
export function redactSecrets(text: string, knownSecrets: readonly string[] = []): string {
  let out = text;
  for (const secret of knownSecrets) {
    if (secret.length >= 6) out = out.split(secret).join(placeholder('secret'));
  }
  if (!SECRET_HINT.test(out)) return out;
  for (const rule of REDACTION_RULES) out = applyRule(out, rule);
  return out;
}

/** Redacts every string inside a JSON-shaped value (stored rows, structured payloads). */
export function redactDeep<T>(value: T, knownSecrets: readonly string[] = []): T {
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return redactSecrets(v, knownSecrets);
    if (Array.isArray(v)) return v.map(walk);
    if (v !== null && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, inner] of Object.entries(v)) out[k] = walk(inner);
      return out;
    }
    return v;
  };
  return walk(value) as T;
}

const INTERNAL_ADDRESS_RULES: readonly RegExp[] = [
  // Loopback and private IPv4, with or without a port or scheme.
  /\b(?:[a-z][a-z0-9+.-]*:\/\/)?(?:127(?:\.\d{1,3}){3}|10(?:\.\d{1,3}){3}|192\.168(?:\.\d{1,3}){2}|172\.(?:1[6-9]|2\d|3[01])(?:\.\d{1,3}){2}|169\.254(?:\.\d{1,3}){2}|0\.0\.0\.0)(?::\d{1,5})?(?:\/[^\s)"'`]*)?/gi,
  /(?:\b[a-z][a-z0-9+.-]*:\/\/)?\[(?:::1?|f[cd][0-9a-f]{2}:[0-9a-f:]*|fe80:[0-9a-f:]*)\](?::\d{1,5})?(?:\/[^\s)"'`]*)?/gi,
  /\b(?:[a-z][a-z0-9+.-]*:\/\/)?localhost(?::\d{1,5})?(?:\/[^\s)"'`]*)?/gi,
  // Host names that only resolve inside a network: gateways, clusters, corporate domains.
  /\b(?:[a-z][a-z0-9+.-]*:\/\/)?(?:[a-z0-9-]+\.)+(?:internal|local|lan|corp|intranet|svc|cluster\.local|home\.arpa)(?::\d{1,5})?(?:\/[^\s)"'`]*)?\b/gi,
];

/**
 * Removes addresses of the machine's own network (loopback, private ranges, internal host names) from
 * text bound for chat: a model error such as "connect ECONNREFUSED 127.0.0.1:43767" says nothing useful to
 * a person and maps the operator's network for anyone in the channel.
 */
export function redactInternalAddresses(text: string, knownHosts: readonly string[] = []): string {
  let out = text;
  for (const host of knownHosts) {
    if (host.length >= 3) out = out.split(host).join('[internal address]');
  }
  for (const re of INTERNAL_ADDRESS_RULES) out = out.replace(re, '[internal address]');
  return out;
}

/** What text bound for a chat surface goes through: secrets and internal addresses removed. */
export function redactForChat(text: string, knownSecrets: readonly string[] = []): string {
  return redactInternalAddresses(redactSecrets(text, knownSecrets));
}

/**
 * Paths pino's `redact` option censors in structured log fields, whatever the message around them.
 * Free text in log fields is redacted separately by the loggers' formatters.
 */
export const LOG_REDACT_PATHS: readonly string[] = [
  'apiKey',
  'token',
  'password',
  'secret',
  'authorization',
  'cookie',
  '*.apiKey',
  '*.token',
  '*.password',
  '*.secret',
  '*.authorization',
  '*.cookie',
  'headers.authorization',
  'headers.cookie',
  'headers["x-api-key"]',
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'env.ANTHROPIC_API_KEY',
  'env.SLACK_BOT_TOKEN',
  'env.SLACK_APP_TOKEN',
  'env.BEMATIC_AGENT_KEY',
];
