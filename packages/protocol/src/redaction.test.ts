import { describe, expect, it } from 'vitest';
import {
  REDACTION_RULES,
  redactDeep,
  redactForChat,
  redactInternalAddresses,
  redactSecrets,
  SECRET_HINT,
} from './redaction.js';

/** One sample of every listed secret kind, built at run time so no scanner flags this file. */
const SAMPLE_SECRETS = {
  'aws-access-key': `AKIA${'IOSFODNN7EXAMPLE'}`,
  'aws-secret-key': `wJalrXUtnFEMI/K7MDENG/${'bPxRfiCYEXAMPLEKEY'}`,
  'github-token': `ghp_${'a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8'}`,
  'github-pat': `github_pat_${'11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ'}`,
  'github-oauth': `gho_${'16C7e42F292c6912E7710c838347Ae178B4a'}`,
  'gitlab-token': `glpat-${'xYz123AbC456dEf789gHi'}`,
  'slack-bot-token': `xoxb-${'123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx'}`,
  'slack-app-token': `xapp-${'1-A0123456789-1234567890123-abcdef0123456789'}`,
  'anthropic-key': `sk-ant-${'api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789'}`,
  'openai-key': `sk-proj-${'AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcd'}`,
  'stripe-key': `sk_live_${'51HqLyjWDarjtT1zdp7dc'}`,
  'google-api-key': `AIza${'SyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY'}`,
  jwt: `eyJhbGciOiJIUzI1NiJ9.${'eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ'}.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U`,
  'pem-private-key': `-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA0Z3VS5JJcds3xfn/ygWyF8PbnGy0AHB7MhgHcTz6sE2I2yPB\naFDrBz9vFqU4yQ==\n-----END RSA ${'PRIVATE KEY'}-----`,
  password: 'hunter2-Correct-Horse',
  bearer: 'dGhpc2lzYXNlY3JldGJlYXJlcnRva2Vu',
} as const;

describe('redactSecrets', () => {
  const s = SAMPLE_SECRETS;
  const cases: Array<[string, string, string]> = [
    ['AWS access key id', `key id ${s['aws-access-key']} in use`, s['aws-access-key']],
    ['AWS secret key in env output', `AWS_SECRET_ACCESS_KEY=${s['aws-secret-key']}`, s['aws-secret-key']],
    [
      'AWS secret key in a credentials file',
      `aws_secret_access_key = ${s['aws-secret-key']}`,
      s['aws-secret-key'],
    ],
    ['GitHub classic token', `token ${s['github-token']}`, s['github-token']],
    ['GitHub fine-grained token', `use ${s['github-pat']}`, s['github-pat']],
    ['GitHub OAuth token', `oauth ${s['github-oauth']}`, s['github-oauth']],
    ['GitHub token in env output', `GITHUB_TOKEN=${s['github-token']}`, s['github-token']],
    ['GitLab token', `push with ${s['gitlab-token']}`, s['gitlab-token']],
    ['Slack bot token', `SLACK_BOT_TOKEN is ${s['slack-bot-token']}`, s['slack-bot-token']],
    ['Slack app token', s['slack-app-token'], s['slack-app-token']],
    ['Anthropic key', `key=${s['anthropic-key']}`, s['anthropic-key']],
    ['OpenAI key', `OPENAI ${s['openai-key']}`, s['openai-key']],
    ['Stripe key', `stripe ${s['stripe-key']}`, s['stripe-key']],
    ['Google API key', `maps ${s['google-api-key']}`, s['google-api-key']],
    ['JWT', `session ${s.jwt}`, s.jwt],
    ['PEM private key', `here:\n${s['pem-private-key']}\nend`, 'MIIEowIBAAKCAQEA0Z3VS5JJcds3xfn'],
    [
      'truncated PEM private key',
      '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA',
      'b3BlbnNzaC1rZXktdjEAAAAA',
    ],
    ['password assignment', `DB_PASSWORD=${s.password}`, s.password],
    ['JSON secret field', `{"client_secret": "${s.password}"}`, s.password],
    ['bearer header', `Authorization: Bearer ${s.bearer}`, s.bearer],
    ['password in a URL', `postgres://admin:${s.password}@db/app`, s.password],
  ];
  it.each(cases)('removes a %s', (_kind, text, secret) => {
    const out = redactSecrets(text);
    expect(out).not.toContain(secret);
    expect(out).toMatch(/\[redacted:[a-z-]+\]/);
  });

  it('finds the hint in every match of every rule, so text without it may skip the rules', () => {
    const texts = [...cases.map((c) => c[1]), ...Object.values(s)];
    let matches = 0;
    for (const rule of REDACTION_RULES) {
      for (const text of texts) {
        for (const m of text.matchAll(new RegExp(rule.pattern.source, rule.pattern.flags))) {
          matches++;
          expect(SECRET_HINT.test(m[0]), `${rule.name} matched ${m[0]}`).toBe(true);
        }
      }
    }
    expect(matches).toBeGreaterThan(cases.length);
    expect(SECRET_HINT.test('task_01JH8Z3Q4M done Task started')).toBe(false);
  });

  it('names the kind it removed', () => {
    expect(redactSecrets(`id ${s['aws-access-key']}`)).toBe('id [redacted:aws-access-key]');
    expect(redactSecrets(`GITHUB_TOKEN=${s['github-token']}`)).toBe('GITHUB_TOKEN=[redacted:github-token]');
    expect(redactSecrets('Authorization: Bearer abcdefgh12345')).toBe(
      'Authorization: Bearer [redacted:authorization]',
    );
  });

  it('removes known values whatever they look like', () => {
    expect(redactSecrets('the key is plainvalue42 ok', ['plainvalue42'])).toBe(
      'the key is [redacted:secret] ok',
    );
  });

  it('leaves ordinary text, counts and paths alone', () => {
    const text =
      'Fixed the login bug in src/auth.ts; input tokens: 1200, output_tokens=340. See docs/token-refresh.md';
    expect(redactSecrets(text)).toBe(text);
    expect(redactSecrets('git commit -m "add password reset page"')).toBe(
      'git commit -m "add password reset page"',
    );
  });

  it('redacts every string inside a structured value', () => {
    const row = { result: `done ${s['github-token']}`, nested: { list: [s['aws-access-key'], 3] } };
    const out = redactDeep(row);
    expect(JSON.stringify(out)).not.toContain(s['github-token']);
    expect(JSON.stringify(out)).not.toContain(s['aws-access-key']);
    expect(out.nested.list[1]).toBe(3);
  });
});

describe('redactInternalAddresses', () => {
  it.each([
    'connect ECONNREFUSED 127.0.0.1:43767',
    'fetch http://localhost:8080/v1/messages failed',
    'upstream 10.0.3.17:443 timed out',
    'gateway api-gw.prod.internal:8443 returned 502',
    'request to http://[::1]:3000/ws failed',
    'proxy 192.168.1.20 refused',
  ])('removes the address in %s', (text) => {
    const out = redactInternalAddresses(text);
    expect(out).toContain('[internal address]');
    expect(out).not.toMatch(/127\.0\.0\.1|localhost|10\.0\.3\.17|prod\.internal|::1|192\.168/);
  });

  it('keeps public hosts and version numbers', () => {
    expect(redactInternalAddresses('see https://docs.anthropic.com, node 20.11.1')).toBe(
      'see https://docs.anthropic.com, node 20.11.1',
    );
  });

  it('chat text loses both secrets and internal addresses', () => {
    const out = redactForChat(`API error at 127.0.0.1:43767 with key ${SAMPLE_SECRETS['anthropic-key']}`);
    expect(out).toBe('API error at [internal address] with key [redacted:anthropic-key]');
  });
});
