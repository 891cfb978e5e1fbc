import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The user's own kis_devlp.yaml, in ~/KIS/config beside the token files, where kis_auth.py reads it at import:
 * the app key and secret, the accounts and the hosts under the names the official samples use. Against the
 * simulator the key and secret are its made-up ones and the hosts its URL (`ops`/`vops` the WebSocket's: a closed
 * port unless given); against the broker, the user's file.
 */
export function writeKisDevlp(home: string, credential: { appKey: string; appSecret: string }, baseUrl: string, wsUrl = 'ws://127.0.0.1:9'): string {
  const dir = join(home, 'KIS', 'config');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const q = (value: string) => JSON.stringify(value);
  const lines = [
    `my_app: ${q(credential.appKey)}`,
    `my_sec: ${q(credential.appSecret)}`,
    `paper_app: ${q(credential.appKey)}`,
    `paper_sec: ${q(credential.appSecret)}`,
    'my_htsid: "trader01"',
    'my_acct_stock: "50000000"',
    'my_acct_future: "60000000"',
    'my_paper_stock: "50000001"',
    'my_paper_future: "60000001"',
    'my_prod: "01"',
    `prod: ${q(baseUrl)}`,
    `ops: ${q(wsUrl)}`,
    `vps: ${q(baseUrl)}`,
    `vops: ${q(wsUrl)}`,
    'my_token: ""',
    'my_agent: "Mozilla/5.0 (replica)"',
  ];
  writeFileSync(join(dir, 'kis_devlp.yaml'), `${lines.join('\n')}\n`, { mode: 0o600 });
  return dir;
}
