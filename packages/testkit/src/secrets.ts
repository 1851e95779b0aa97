/**
 * One sample of every secret kind Bematic promises never to show, for end-to-end redaction tests. Built
 * from pieces at run time so secret scanners do not flag the repository; none of them is a live credential.
 */
export const SAMPLE_SECRETS: Readonly<Record<string, string>> = {
  'aws access key': `AKIA${'IOSFODNN7EXAMPLE'}`,
  'aws secret key': `aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/${'bPxRfiCYEXAMPLEKEY'}`,
  'github token': `ghp_${'a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8'}`,
  'github fine-grained token': `github_pat_${'11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ'}`,
  'gitlab token': `glpat-${'xYz123AbC456dEf789gHi'}`,
  'slack token': `xoxb-${'123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx'}`,
  'anthropic key': `sk-ant-${'api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789'}`,
  'openai key': `sk-proj-${'AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcd'}`,
  'stripe key': `sk_live_${'51HqLyjWDarjtT1zdp7dc'}`,
  'google api key': `AIza${'SyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY'}`,
  jwt: `eyJhbGciOiJIUzI1NiJ9.${'eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ'}.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U`,
  'pem private key': `-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA0Z3VS5JJcds3xfn${'ygWyF8PbnGy0AHB7MhgHcTz6sE2I2yPB'}\n-----END RSA ${'PRIVATE KEY'}-----`,
  'password assignment': `DB_PASSWORD=${'hunter2-Correct-Horse'}`,
  'bearer header': `Authorization: Bearer ${'dGhpc2lzYXNlY3JldGJlYXJlcnRva2Vu'}`,
};

/** The part of each sample that must never be seen (the value, not the variable name around it). */
export const SECRET_VALUES: readonly string[] = Object.values(SAMPLE_SECRETS).map((s) =>
  s.includes('PRIVATE KEY') ? 'MIIEowIBAAKCAQEA0Z3VS5JJcds3xfn' : (s.split(/=|Bearer /).at(-1) ?? s),
);
