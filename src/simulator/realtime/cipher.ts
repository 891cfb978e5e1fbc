/**
 * The encryption of KIS fill notices (docs/brokers.md#kis-fill-notices): AES-256-CBC with PKCS7 padding, base64,
 * under a key and iv handed out in the registration answer and changed with every session. Clients use the two
 * strings' UTF-8 bytes as key and iv (official `aes_cbc_base64_dec`), so they are printable: 32 lower-case letters
 * and 16 hex digits, as in captured answers (`"iv":"d59d91fcf9fd0044","key":"iuheqrmvfxoceaxeyqgjwesozgizmmgx"`).
 */
import { createCipheriv, randomBytes } from 'node:crypto';

export interface SessionCipher {
  key: string;
  iv: string;
}

export function newSessionCipher(): SessionCipher {
  // Modulo bias is irrelevant: the key only has to be unpredictable enough that no client guesses another's.
  const key = [...randomBytes(32)].map((b) => String.fromCharCode(97 + (b % 26))).join('');
  return { key, iv: randomBytes(8).toString('hex') };
}

export function encryptRecord(cipher: SessionCipher, plain: string): string {
  const aes = createCipheriv('aes-256-cbc', Buffer.from(cipher.key, 'utf8'), Buffer.from(cipher.iv, 'utf8'));
  return Buffer.concat([aes.update(plain, 'utf8'), aes.final()]).toString('base64');
}
